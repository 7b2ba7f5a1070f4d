"""Hugging Face image-to-text models (BLIP, GIT, VisionEncoderDecoder captioners, TrOCR).

transformers 5 removed the ``image-to-text`` pipeline, so this engine drives the processor and
``model.generate`` itself, which is also what lets frames of several cameras share one batch.
Any model id on the hub or any local folder made with ``save_pretrained`` loads the same way.

Speed (bench/RESULTS.md has the numbers) comes from two neighbours: ``precision.py`` picks and
applies the precision a model runs at (checked against fp32 at load time), ``blip_attention.py``
runs BLIP's vision attention through PyTorch's fused kernel.  Thread policy (how OpenMP threads
wait) is the command line's business, set at start-up before torch loads (``bridge/cli.py``).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from bridge.config import DEFAULT_CAPTION_MODEL, ModelConfig
from bridge.engines import blip_graphs
from bridge.engines.base import Engine, EngineOutput, JobOptions, register
from bridge.engines.blip_attention import use_fused_attention
from bridge.engines.blip_graphs import GraphedBlip
from bridge.engines.blip_greedy import GreedyBlip
from bridge.engines.precision import choose as choose_precision
from bridge.errors import ModelError
from bridge.memory import give_back_freed_memory, limit_malloc_arenas

if TYPE_CHECKING:
    import torch

_LOGGER = logging.getLogger(__name__)
PROMPTABLE = frozenset({"blip", "git"})
#: After this long without a batch, the heap a batch left behind goes back to the system.
IDLE_TRIM_SECONDS = 2.0
MISSING_MODEL_HINT = (
    "Download it once where the hub is reachable (`hf download {model}`) and copy the cache, "
    "or save it to a folder with save_pretrained() and set the model to that folder's path"
)


def resolve_device(wanted: str) -> str:
    """``auto`` means the first CUDA device when there is one, else the CPU."""
    import torch

    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        _LOGGER.warning("device %s asked for but CUDA is not available; using the CPU", wanted)
        return "cpu"
    return wanted


def offline_only(model: str) -> bool:
    """Load only from disk for local folders and when ``HF_HUB_OFFLINE`` is set.

    Without this, a missing model on a machine with no internet spends minutes in the hub
    client's retries before the user is told anything.
    """
    return Path(model).is_dir() or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


@register("transformers")
class TransformersEngine(Engine):
    """Image captioning with any ``AutoModelForImageTextToText`` checkpoint."""

    default_model = DEFAULT_CAPTION_MODEL

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.model_id = config.model or self.default_model
        self.device = "cpu"
        self.model: Any = None
        self.processor: Any = None
        self.dtype: torch.dtype | None = None
        self.promptable = False
        #: The precision the model runs at once loaded (``auto`` resolved).
        self.precision = "fp32"
        #: Per-step cosines of the load-time parity check (``auto`` only).
        self.parity: list[float] | None = None
        #: Median seconds per candidate of the load-time speed probe, where ``auto`` had a choice.
        self.probe: dict[str, float] | None = None
        #: The probe record ``auto``'s choice was read from (an earlier start measured it).
        self.probe_record: str | None = None
        #: BLIP's decoder in a loop of our own, where it gives ``generate``'s tokens (greedy only):
        #: folded on a CPU, replayed as CUDA graphs on a GPU.
        self.greedy: GreedyBlip | GraphedBlip | None = None
        self._idle_trim = threading.Timer(0, lambda: None)  # re-armed after every batch

    @property
    def label(self) -> str:
        """The model id or folder, as configured."""
        return self.model_id

    def load(self) -> None:
        """Load processor and model (offline for folders and HF_HUB_OFFLINE), then warm up."""
        import torch
        from transformers import AutoProcessor

        limit_malloc_arenas()
        local = offline_only(self.model_id)
        try:
            processor = AutoProcessor.from_pretrained(  # type: ignore[no-untyped-call]
                self.model_id, local_files_only=local
            )
        except (OSError, ValueError, KeyError, ImportError) as err:
            raise self._unavailable(err) from err
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        self.device = resolve_device(self.config.device)
        self.processor = processor
        threads = torch.get_num_threads()
        converted = choose_precision(
            self._load_weights(),
            self.config.precision,
            device=self.device,
            processor=processor,
            reload=self._load_weights,
            label=self.model_id,
        )
        model = self.model = converted.model
        self.precision, self.dtype, self.parity, self.probe = (
            converted.precision,
            converted.dtype,
            converted.parity,
            converted.probe,
        )
        self.probe_record = converted.recorded
        # a checked form leaves its decoder's thread count behind (thread_split.py)
        torch.set_num_threads(threads)
        self.promptable = getattr(model.config, "model_type", "") in PROMPTABLE
        self.input_size = _processor_size(processor)
        self.greedy = self._checked_greedy_loop()
        # warm-up; on a GPU also each batch size's graph, captured before the first camera waits
        graphed = isinstance(self.greedy, GraphedBlip)
        for size in range(1, self.config.batch_size + 1) if graphed else [1]:
            grey = Image.new("RGB", (64, 64), (127, 127, 127))
            self.run_batch([grey] * size, [JobOptions()] * size)
        give_back_freed_memory()

    def details(self) -> dict[str, Any]:
        """Precision it runs at, the parity check's worst cosine, the speed probe's figures."""
        found: dict[str, Any] = {"precision": self.precision}
        if self.parity:
            found["parity_min_cosine"] = round(min(self.parity), 5)
        if self.probe:
            found["probe"] = {name: round(value, 4) for name, value in self.probe.items()}
        if self.probe_record:
            found["probe_record"] = self.probe_record  # the figures are an earlier start's
        if self.greedy is not None:
            found["greedy_loop"] = True
        if isinstance(self.greedy, GraphedBlip) and self.greedy.graphs:
            found["cuda_graphs"] = True
        return found

    def _checked_greedy_loop(self) -> GreedyBlip | GraphedBlip | None:
        """The own greedy loop, kept only if it gives ``generate``'s tokens on a test frame."""
        import torch

        from bridge.engines.precision import PARITY_TOKENS, probe_image

        greedy: GreedyBlip | GraphedBlip | None = GreedyBlip.for_model(self.model)
        if greedy is None and blip_graphs.pays_on(self.device):
            greedy = GraphedBlip.for_model(self.model, self.device, self.config.batch_size)
        if greedy is None:
            return None
        prompt = self.config.prompt if self.promptable else None
        inputs = self._prepare([probe_image()], prompt)
        given = dict(inputs)  # BLIP's generate overwrites the prompt's first token in place
        if "input_ids" in given:
            given["input_ids"] = given["input_ids"].clone()
        with torch.inference_mode():
            expected = self.model.generate(**given, max_new_tokens=PARITY_TOKENS, num_beams=1)
            ours = greedy.generate(
                inputs["pixel_values"],
                PARITY_TOKENS,
                inputs.get("input_ids"),
                inputs.get("attention_mask"),
            )
        if ours is None or not torch.equal(ours, expected):
            _LOGGER.warning(
                "%s: the greedy loop's tokens differ from generate's on the check's frame; "
                "captions go through generate",
                self.model_id,
            )
            return None
        return greedy

    def _unavailable(self, err: BaseException) -> ModelError:
        reason = str(err).splitlines()[0][:300]
        return ModelError(
            "model_unavailable",
            f"cannot load model {self.model_id!r} ({reason}). "
            + MISSING_MODEL_HINT.format(model=self.model_id),
            self.model_id,
        )

    def _load_weights(self) -> Any:
        """The model in fp32 on the CPU, in eval mode, with fused attention where we know how."""
        from transformers import AutoModelForImageTextToText

        try:
            model = AutoModelForImageTextToText.from_pretrained(
                self.model_id, local_files_only=offline_only(self.model_id)
            )
        except (OSError, ValueError, KeyError, ImportError) as err:
            raise self._unavailable(err) from err
        use_fused_attention(model)
        return model.eval()  # type: ignore[no-untyped-call]

    def run_batch(
        self, images: list[Image.Image], options: list[JobOptions]
    ) -> list[EngineOutput | ModelError]:
        """Run the batch in groups that share a prompt; isolate a failing image if one fails."""
        self._idle_trim.cancel()
        try:
            return self._run_groups(images, options)
        finally:
            self._idle_trim = threading.Timer(IDLE_TRIM_SECONDS, give_back_freed_memory)
            self._idle_trim.daemon = True
            self._idle_trim.start()

    def _run_groups(
        self, images: list[Image.Image], options: list[JobOptions]
    ) -> list[EngineOutput | ModelError]:
        results: list[EngineOutput | ModelError | None] = [None] * len(images)
        groups: dict[str | None, list[int]] = {}
        for index, option in enumerate(options):
            prompt = (option.prompt or self.config.prompt) if self.promptable else None
            groups.setdefault(prompt, []).append(index)
        for prompt, indexes in groups.items():
            batch = [images[i] for i in indexes]
            outputs: list[EngineOutput | ModelError]
            try:
                outputs = list(self._generate(batch, prompt))
            except Exception as err:  # noqa: BLE001 - any model failure becomes an error event
                if len(batch) == 1:
                    outputs = [self._failure(err)]
                else:
                    outputs = [self._generate_one(image, prompt) for image in batch]
            for i, output in zip(indexes, outputs, strict=True):
                results[i] = output
        return [r if r is not None else self._failure(RuntimeError("no output")) for r in results]

    def _generate_one(self, image: Image.Image, prompt: str | None) -> EngineOutput | ModelError:
        try:
            return self._generate([image], prompt)[0]
        except Exception as err:  # noqa: BLE001
            return self._failure(err)

    def _failure(self, err: BaseException) -> ModelError:
        _LOGGER.warning("model %s failed: %s", self.model_id, err)
        return ModelError("model_failed", f"{self.model_id} failed: {err}", self.model_id)

    def _prepare(self, images: list[Image.Image], prompt: str | None) -> Any:
        kwargs: dict[str, Any] = {"images": images, "return_tensors": "pt"}
        if prompt:
            kwargs["text"] = [prompt] * len(images)
        inputs = self.processor(**kwargs).to(self.device)
        if self.dtype is not None:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs

    def _generate(self, images: list[Image.Image], prompt: str | None) -> list[EngineOutput]:
        import torch

        inputs = self._prepare(images, prompt)
        generated = None
        with torch.inference_mode():
            if self.greedy is not None and self.config.num_beams == 1:
                generated = self.greedy.generate(
                    inputs["pixel_values"],
                    self.config.max_new_tokens,
                    inputs.get("input_ids"),
                    inputs.get("attention_mask"),
                )
            if generated is None:
                generated = self.model.generate(
                    **inputs,
                    max_new_tokens=self.config.max_new_tokens,
                    num_beams=self.config.num_beams,
                )
        texts = self.processor.batch_decode(generated, skip_special_tokens=True)
        return [EngineOutput(text=" ".join(text.split())) for text in texts]


@register("trocr")
class TrOcrEngine(TransformersEngine):
    """Single-line OCR with a VisionEncoderDecoder model (TrOCR): meter windows, labels, plates.

    TrOCR reads one line of text per image, so the whole frame is one "line"; its score is the
    mean probability of the generated tokens.
    """

    default_model = "microsoft/trocr-base-printed"

    def _generate(self, images: list[Image.Image], prompt: str | None) -> list[EngineOutput]:
        import torch

        inputs = self._prepare(images, None)
        with torch.inference_mode():
            out = self.model.generate(
                pixel_values=inputs["pixel_values"],
                max_new_tokens=self.config.max_new_tokens,
                num_beams=1,
                output_scores=True,
                return_dict_in_generate=True,
            )
            steps = self.model.compute_transition_scores(
                out.sequences, out.scores, normalize_logits=True
            )
        texts = self.processor.batch_decode(out.sequences, skip_special_tokens=True)
        outputs = []
        for image, text, step_scores in zip(images, texts, steps, strict=True):
            finite = step_scores[torch.isfinite(step_scores)]
            score = float(finite.mean().exp()) if finite.numel() else 0.0
            clean = " ".join(text.split())
            width, height = image.size
            box = [[0, 0], [width, 0], [width, height], [0, height]]
            lines = [{"text": clean, "score": round(score, 4), "box": box}] if clean else []
            outputs.append(EngineOutput(text=clean, extra={"lines": lines}))
        return outputs


def _processor_size(processor: Any) -> int | None:
    """The longest side the model's image processor resizes to (for JPEG draft decoding)."""
    image_processor = getattr(processor, "image_processor", processor)
    size = getattr(image_processor, "size", None)
    if isinstance(size, dict):
        values = [v for k, v in size.items() if k in ("height", "width", "shortest_edge")]
        return int(max(values)) if values else None
    height = getattr(size, "height", None)
    width = getattr(size, "width", None)
    if height or width:
        return int(max(height or 0, width or 0))
    return None
