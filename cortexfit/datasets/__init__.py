"""Dataset loaders: the embedded synthetic recording and the shared real recordings."""
from .paths import ENV_VAR, shared_data_dir

__all__ = ["ENV_VAR", "shared_data_dir"]
