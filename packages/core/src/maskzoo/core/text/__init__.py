"""Text: a character-level masked-diffusion model on tinyshakespeare, the core's end-to-end proof."""
