"""Diffusion engines (LTX-Video, LTX-2, SVD, Wan): one module per concern, one per model family.

Nothing is imported here, so loading any one module (the `models` command's weight survey, say) never pulls in
the rest. docs/architecture.md draws how the modules depend on each other.
"""
