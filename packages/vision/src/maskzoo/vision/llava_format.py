"""LLaDA-V checkpoint layout (stub, filled in below)."""
def is_llava_llada_config(meta): return meta.get("model_type") == "llava_llada"
def load_llava_llada(path, device): raise NotImplementedError
