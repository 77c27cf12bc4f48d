"""The Gradio page: upload an image or GeoTIFF, see the landslides outlined and their probabilities, change the
threshold and minimum area (re-derived without the model), download the mask and polygons for QGIS. Scripts call
one endpoint, `/map_image` (gradio_client); the page's own handlers are hidden from the API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

import gradio as gr
import torch

from ..cards import describe_contract
from ..inference.options import DEFAULT_MIN_PIXELS, PredictionOptions
from ..url_policy import UrlPolicy
from . import DEFAULT_MAX_PIXELS
from .egress import operator_proxy
from .session import Mapper, Run, removed_on_signals
from .views import outlined, probability_picture, summary_markdown

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # gradio reads it on each launch: no telemetry calls

# System fonts: the default theme would fetch Google Fonts, which an offline machine or test cannot reach.
THEME = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
IMAGE_HEIGHT = 520  # px in the page; the pictures themselves are up to DISPLAY_SIDE
DOWNLOAD_ORDER = ("mask", "mask_png", "geojson", "gpkg")
NOTHING = (None, None, None, "", None)  # run, outlined image, probability map, summary, downloads
DEFAULTS = PredictionOptions()  # the page's and the API's threshold and minimum area are `translandseg predict`'s
# The Scaling choices, as `translandseg predict --scale` offers them ("": the model's contract).
SCALINGS = (("the model's own", ""), ("percentile: a per-scene 2-98% stretch", "percentile"),
            ("divisor: value / Divisor * 255", "divisor"), ("none: 8-bit values as they are", "none"))
MODEL_QUEUE = "model"  # the page's uploads and the API's calls share one queue: one mapping at a time
KEEP_SECONDS = 3600  # Gradio's copies of the files shown or returned, and a script's last run, are kept an hour
DEFAULT_MAX_UPLOAD_MB = 1024  # Gradio refuses larger uploads before they reach the app
QUEUE_SIZE = 32  # calls waiting for the model beyond these are refused at once ("queue full"), not held in memory
# GDAL settings for a process that reads strangers' files (each only where the operator has not set it): VRT bands
# that read raw files or run Python are off (GDAL honours the first from 3.12; the app reads no VRT anyway, see
# geo.only_drivers), no folder is listed beside a file, and object stores are read anonymously, so a stranger's
# s3:// or gs:// URL cannot read the operator's private buckets with the machine's credentials.
APP_GDAL_SETTINGS = {
    "GDAL_VRT_ENABLE_RAWRASTERBAND": "NO",
    "GDAL_VRT_ENABLE_PYTHON": "NO",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "AWS_NO_SIGN_REQUEST": "YES",
    "GS_NO_SIGN_REQUEST": "YES",
    "AZURE_NO_SIGN_REQUEST": "YES",
}


def shown(run: Run) -> tuple:
    """The outputs that show `run`'s current maps."""
    maps = run.maps
    downloads = [str(maps.files[name]) for name in DOWNLOAD_ORDER if name in maps.files] + [str(run.probability)]
    summary = summary_markdown(maps.count, maps.total_area, maps.unit, maps.threshold, maps.min_area, run.header)
    return (run, outlined(run.rgb, maps.files["gpkg"], maps.files["mask"]),
            probability_picture(run.probability, run.rgb.shape[:2], maps.threshold), summary, downloads)


def failed(error: Exception) -> tuple:
    """A bad upload: a warning toast and the message in the page; the app goes on serving."""
    gr.Warning(str(error))
    return (*NOTHING, f"**Could not map this file.** {error}")


def parse_area(text: Optional[str]) -> Optional[float]:
    """The minimum area box: empty is None (DEFAULT_MIN_PIXELS pixels' area, as `translandseg predict`), else a
    number >= 0."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"the minimum area must be a number, got {text!r}.") from None
    return checked_area(value, repr(text))


def checked_area(value: Optional[float], as_given: Optional[str] = None) -> Optional[float]:
    """A minimum area of None (the default) or >= 0; ValueError quoting it `as_given` otherwise."""
    if value is not None and not value >= 0:  # also refuses NaN
        raise ValueError(f"the minimum area must be 0 or more, got {as_given or value}.")
    return value


def close_run(run: Optional[Run]) -> None:
    if run is not None:
        run.close()


def tile_progress(progress):
    """`Mapper.map`'s on_progress for a Gradio progress bar in tiles (None: no bar)."""
    return None if progress is None else lambda done, total: progress((done, total), desc="Mapping", unit="tiles")


def map_upload(mapper: Mapper, path, threshold: float, min_area: Optional[str], run: Optional[Run],
               progress=None, is_url: bool = False, scale: Optional[str] = None,
               divisor: Optional[float] = None) -> tuple:
    """A new upload (or, `is_url`, the URL box's text): the previous run is dropped, the new one checked and mapped
    (progress in tiles, with the Scaling and Divisor chosen: None or "" is the model's) and shown."""
    close_run(run)
    if path is None or (isinstance(path, str) and not path.strip()):
        return (*NOTHING, "")
    path = path.strip() if isinstance(path, str) else path
    mapping = mapper.map_url if is_url else mapper.map
    try:
        return (*shown(mapping(path, threshold, parse_area(min_area), tile_progress(progress), scale, divisor)), "")
    except (ValueError, OSError) as error:  # bad input, named; or a full disk, named by `predict_file`
        return failed(error)


def change_settings(threshold: float, min_area: Optional[str], run: Optional[Run]) -> tuple:
    """A new threshold or minimum area: the maps re-derived from the kept probabilities, without the model."""
    if run is None:
        return (*NOTHING, "")
    try:
        settings = (threshold, parse_area(min_area))
    except ValueError as error:
        return (run, gr.skip(), gr.skip(), gr.skip(), gr.skip(), f"**Could not re-threshold.** {error}")
    if settings == (run.maps.threshold, run.maps.min_area):  # e.g. the slider let go where it was
        return (gr.skip(),) * 6
    run.rethreshold(*settings)
    return (*shown(run), "")


def map_image(mapper: Mapper, path, threshold: float, min_area: Optional[float], run: Optional[Run],
              progress=None, url: str = "", scale: Optional[str] = "", divisor: Optional[float] = None) -> tuple:
    """The API's call: the caller's previous run dropped, the image (or else the `url`) mapped with the `scale` and
    `divisor` given ("" and None: the model's); returns the run and API_RETURNS. A bad image raises gr.Error with
    the message the page shows, which gradio_client raises as it is."""
    close_run(run)
    url = (url or "").strip()
    if path is None and not url:
        raise gr.Error("no image given: pass one, e.g. handle_file('scene.tif').", print_exception=False)
    try:
        mapping = (mapper.map, path) if path is not None else (mapper.map_url, url)
        run = mapping[0](mapping[1], threshold, checked_area(min_area), tile_progress(progress), scale, divisor)
    except (ValueError, OSError) as error:
        raise gr.Error(str(error), print_exception=False) from error  # bad input: no traceback in the log
    maps = run.maps
    return (run, maps.count, maps.total_area, maps.unit, str(maps.files["mask"]), str(maps.polygons),
            str(run.probability))


# The polygons: GeoJSON, or the GeoPackage for an image without georeferencing (pixel coordinates have no CRS, which a
# GeoJSON would claim as WGS 84).
API_RETURNS = ("Landslides", "Total area", "Area unit", "Mask GeoTIFF", "Polygons (GeoJSON, or GPKG for a plain image)",
               "Probability GeoTIFF")


def add_api(mapper: Mapper) -> None:
    """`/map_image` in the Blocks being built: hidden components give its inputs defaults and its outputs names
    (gradio_client's view_api shows these labels); each client's last run is kept until its next call."""

    def on_map_image(image, threshold=DEFAULTS.threshold, min_area=DEFAULTS.min_area, run=None, url="", scale="",
                     divisor=None, progress=gr.Progress()):
        """Map one image or GeoTIFF as `translandseg predict` does: the number of landslides, their total area,
        its unit (m2 where projected, else pixels), and the mask, polygons and probability files. The polygons are a
        GeoJSON, or for an image without georeferencing (pixel coordinates) a GeoPackage with an undefined CRS.
        `url` (https://, s3://, ...) maps a remote GeoTIFF instead of `image`, read in windows. `scale` (none,
        divisor or percentile; "" the model's) and `divisor` are `translandseg predict`'s --scale and --divisor:
        how band values become 0-255 (a 16-bit scene for an 8-bit model: percentile)."""
        return map_image(mapper, image, threshold, min_area, run, progress, url, scale, divisor)

    inputs = [gr.File(label="Image or GeoTIFF", visible=False),
              gr.Slider(0.01, 0.99, value=DEFAULTS.threshold, step=0.01, label="Threshold", visible=False),
              gr.Number(DEFAULTS.min_area, minimum=0, label="Minimum area", visible=False),
              gr.State(None, delete_callback=close_run, time_to_live=KEEP_SECONDS),  # or until its next call
              gr.Textbox("", label="URL", visible=False),
              gr.Textbox("", label="Scaling", visible=False), gr.Number(None, label="Divisor", visible=False)]
    count, area, unit, *files = API_RETURNS
    outputs = [inputs[3], gr.Number(label=count, precision=0, visible=False), gr.Number(label=area, visible=False),
               gr.Textbox(label=unit, visible=False), *(gr.File(label=name, visible=False) for name in files)]
    gr.on([], on_map_image, inputs, outputs, api_name="map_image", concurrency_id=MODEL_QUEUE)


def build_app(mapper: Mapper, title: str = "Landslide mapping") -> gr.Blocks:
    """The page for one model; `launch_app` serves it."""

    def on_upload(path, threshold, min_area, run, scale, divisor, progress=gr.Progress()):
        return map_upload(mapper, path, threshold, min_area, run, progress, scale=scale, divisor=divisor)

    def on_url(text, threshold, min_area, run, scale, divisor, progress=gr.Progress()):
        return map_upload(mapper, text, threshold, min_area, run, progress, True, scale, divisor)

    def on_scaling(path, text, threshold, min_area, run, scale, divisor, progress=gr.Progress()):
        """A new Scaling or Divisor maps the upload (else the URL) again with it."""
        return map_upload(mapper, path or text, threshold, min_area, run, progress, not path, scale, divisor)

    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(KEEP_SECONDS, KEEP_SECONDS)) as demo:
        gr.Markdown(f"# {title}\n{describe(mapper)}")
        run = gr.State(None, delete_callback=close_run)
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                upload = gr.File(label="Image or GeoTIFF (PNG, JPEG, TIFF)", elem_id="upload")
                url = gr.Textbox(label="Or a URL", elem_id="url", placeholder="https://.../scene.tif or s3://...",
                                 info="A public GeoTIFF or COG on a web server or object store, read in windows. "
                                      "Enter maps it.", visible=mapper.url_policy is not None)
                threshold = gr.Slider(0.01, 0.99, value=DEFAULTS.threshold, step=0.01, label="Threshold",
                                      elem_id="threshold",
                                      info="Probability above which a pixel is landslide.")
                min_area = gr.Textbox(label="Minimum area", elem_id="min-area",
                                      placeholder=f"{DEFAULT_MIN_PIXELS} pixels' area",
                                      info="Smaller polygons are dropped: m² where georeferenced, else pixels. "
                                           f"Empty: {DEFAULT_MIN_PIXELS} pixels' area, as `translandseg predict`. "
                                           "Enter applies it.")
                with gr.Row():
                    scaling = gr.Dropdown(list(SCALINGS), value="", label="Scaling", elem_id="scaling",
                                          info="How band values become 0-255, as `translandseg predict --scale`: "
                                               "percentile for a 16-bit scene given to an 8-bit model.")
                    divisor = gr.Number(None, label="Divisor", elem_id="divisor", minimum=0,
                                        info="For divisor: the value that is white (Enter applies it).")
                status = gr.Markdown(elem_id="status")
                summary = gr.Markdown(elem_id="summary")
            with gr.Column(scale=3):
                with gr.Row():
                    picture = gr.Image(label="Landslide outlines", format="png", interactive=False,
                                       height=IMAGE_HEIGHT, elem_id="outlined")
                    probability = gr.Image(label="Probability", format="png", interactive=False,
                                           height=IMAGE_HEIGHT, elem_id="probability")
                downloads = gr.File(label="Downloads: mask, polygons and probabilities for QGIS",
                                    file_count="multiple", interactive=False, elem_id="downloads")
        outputs = [run, picture, probability, summary, downloads, status]
        page = dict(api_visibility="private")  # the page's handlers: scripts call /map_image instead
        chosen = [threshold, min_area, run, scaling, divisor]
        upload.upload(on_upload, [upload, *chosen], outputs, concurrency_id=MODEL_QUEUE, **page)
        upload.clear(on_upload, [upload, *chosen], outputs, **page)  # no file: the page is emptied
        url.submit(on_url, [url, *chosen], outputs, concurrency_id=MODEL_QUEUE, **page)
        gr.on([scaling.input, divisor.submit], on_scaling, [upload, url, *chosen], outputs,
              concurrency_id=MODEL_QUEUE, **page)
        gr.on([threshold.release, min_area.submit], change_settings, [threshold, min_area, run], outputs,
              trigger_mode="always_last", **page)
        add_api(mapper)
    return demo


def describe(mapper: Mapper) -> str:
    """What the page says of the model: its name and how it reads a scene (its contract)."""
    return (f"Model `{mapper.name}` on {mapper.device}: {describe_contract(mapper.contract)}. "
            "Scenes are mapped as `translandseg predict` maps them.")


def url_policy_for(allow_private_urls: bool, no_urls: bool) -> Optional[UrlPolicy]:
    """The app's URL policy: None (no URLs) for `no_urls`; public hosts only unless `allow_private_urls`."""
    return None if no_urls else UrlPolicy(allow_private=allow_private_urls)


def url_note(policy: Optional[UrlPolicy]) -> str:
    """The line printed at start about what the URL box fetches."""
    if policy is None:
        return "* URLs: off (--no_urls): only uploaded files are mapped"
    if policy.allow_private:
        return ("* URLs: loopback and private addresses allowed (--allow_private_urls): anyone who can reach this "
                "page can make the server fetch from its own network")
    own = operator_proxy()
    if own:
        return (f"* URLs: public http(s), s3, gs and az only; GDAL reads them through your proxy ({own}), which "
                "must itself refuse loopback and private addresses: the app checks each URL and its redirects "
                "first, but not the requests GDAL sends through your proxy")
    return "* URLs: public http(s), s3, gs and az only (every request GDAL makes is checked by the app's proxy)"


def gdal_settings_applied(settings: dict) -> Callable[[], None]:
    """Put `settings` in the environment where unset (GDAL reads it in every thread); returns what undoes that."""
    added = [name for name in settings if name not in os.environ]
    os.environ.update({name: settings[name] for name in added})
    return lambda: [os.environ.pop(name, None) for name in added]


def upload_limit(max_upload_mb: Optional[float]) -> Optional[int]:
    """Gradio's max_file_size in bytes (None or 0 MB: no limit)."""
    return int(max_upload_mb * 2**20) if max_upload_mb else None


def launch_app(model: Union[str, Path, torch.nn.Module], port: Optional[int] = None, host: Optional[str] = None,
               max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, device: Optional[str] = None, block: bool = True,
               title: str = "Landslide mapping", share: bool = False, backend: str = "torch",
               allow_private_urls: bool = False, no_urls: bool = False,
               max_upload_mb: Optional[float] = DEFAULT_MAX_UPLOAD_MB) -> gr.Blocks:
    """Load the model, build the page and serve it (`block=False`: return at once, `demo.close()` stops it;
    `share`: also on a temporary public gradio.live link; `backend`: torch or onnxruntime). URLs: public hosts
    only, unless `allow_private_urls`; none with `no_urls`. Uploads over `max_upload_mb` are refused."""
    policy = url_policy_for(allow_private_urls, no_urls)
    print(url_note(policy), flush=True)
    restore = gdal_settings_applied(APP_GDAL_SETTINGS)
    mapper = Mapper(model, device, max_pixels, backend=backend, url_policy=policy)
    demo = build_app(mapper, title)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)  # one mapping at a time: the model's memory once
    # quiet: Gradio's own lines advise setting `share=True` in `launch()`, code a user of `translandseg app` does not
    # write (`--share` is theirs); the address is printed here instead (a public link Gradio prints itself).
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, quiet=True, theme=THEME,
                footer_links=["api", "gradio"], max_file_size=upload_limit(max_upload_mb))
    close = demo.close

    def close_and_clean(*args, **kwargs):  # the work folder and the GDAL settings go with the server
        try:
            return close(*args, **kwargs)
        finally:
            mapper.close()
            restore()

    demo.close = close_and_clean
    if block:
        print(f"* Running on local URL:  {demo.local_url}\n* For scripts: gradio_client, api_name='/map_image' "
              f"({demo.local_url}?view=api)", flush=True)
        with removed_on_signals(mapper.close):  # a stopped Space or container leaves no maps behind
            demo.block_thread()
    return demo
