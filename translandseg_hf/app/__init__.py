"""`translandseg app`: a Gradio page for trying a model on one image or GeoTIFF, and `translandseg space`, which
writes it as a Hugging Face Space. Gradio and torch load only when the page is built (`write_space` needs neither)."""

from ..lazy import lazy_exports

_EXPORTS = {
    "Mapper": "session",
    "Run": "session",
    "build_app": "ui",
    "launch_app": "ui",
    "check_upload": "upload",
    "derive_maps": "maps",
    "write_space": "space",
}
__all__ = ["DEFAULT_MAX_PIXELS", *_EXPORTS]
DEFAULT_MAX_PIXELS = 50_000_000  # a 7000 x 7000 px scene, a few minutes on a CPU: a shared Space stays responsive


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
