"""Hugging Face image-to-text models (BLIP, GIT, VisionEncoderDecoder captioners, TrOCR).

transformers 5 removed the ``image-to-text`` pipeline, so this engine drives the processor and
``model.generate`` itself, which is also what lets frames of several cameras share one batch.
Any model id on the hub or any local folder made with ``save_pretrained`` loads the same way.

Speed (bench/RESULTS.md has the numbers): ``precision: auto`` (the default) runs fp16 on CUDA;
on a CPU with AMX (Intel Xeon 4th generation and later) ``mixed`` -- the vision encoder in bf16,
which AMX multiplies several times faster than anything else, and the text decoder's Linear
layers in dynamic int8, since decoding a token at a time is bound by reading weights, of which
int8 reads half -- and elsewhere dynamic int8 Linear layers throughout.  Each only after
checking, on this very model at load time, that the fast form predicts the same next tokens as
fp32 (teacher-forced logits, cosine of at least ``PARITY_MIN_COSINE`` at every step); a model
that fails the check stays fp32.  BLIP's
vision attention runs through PyTorch's fused ``scaled_dot_product_attention`` instead of the
eager matmul/softmax/matmul (same result, without writing out a 577x577 score matrix per head).
"""

from __future__ import annotations

import logging
import os
import threading
import types
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw

from bridge.config import ModelConfig
from bridge.engines.base import Engine, EngineOutput, JobOptions, register
from bridge.errors import ModelError
from bridge.memory import give_back_freed_memory, limit_malloc_arenas

if TYPE_CHECKING:
    import torch

# torch's OpenMP threads spin at every barrier before they sleep (libgomp: 300,000 turns by
# default).  On a CPU shared with other busy processes (a home server running Frigate) a
# spinning thread waits for a sibling the kernel has parked, and a model of many small
# operations ran 100x slower in bench/RESULTS.md; never spinning (OMP_WAIT_POLICY=PASSIVE)
# cures that but costs an idle machine 40-60% on BLIP's token-by-token decoding, where every
# step wakes the threads dozens of times.  A short spin keeps most of the idle speed and stays
# far from the pathology.  OpenMP reads it once, when torch is first imported, which in the
# bridge happens after this module is loaded.  An explicit setting in the environment wins.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"

_LOGGER = logging.getLogger(__name__)
PROMPTABLE = frozenset({"blip", "git"})
#: Smallest cosine between fp32 and fast-path next-token logits for ``auto`` to keep the fast path.
PARITY_MIN_COSINE = 0.99
#: Tokens generated for the load-time parity check (enough to cover a short caption).
PARITY_TOKENS = 12
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

    default_model = "Salesforce/blip-image-captioning-base"

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
        model = self._apply_precision(self._load_weights(), torch)
        self.model = model
        self.promptable = getattr(model.config, "model_type", "") in PROMPTABLE
        self.input_size = _processor_size(processor)
        self.run_batch([Image.new("RGB", (64, 64), (127, 127, 127))], [JobOptions()])
        give_back_freed_memory()

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

    def _apply_precision(self, model: Any, torch: Any) -> Any:
        wanted = self.config.precision
        if wanted != "auto":
            return self._convert(model, wanted, torch)
        if self.device.startswith("cuda"):
            candidate = "fp16"
        else:
            candidate = "mixed" if cpu_has_amx() and vision_part(model) else "int8"
        try:
            reference = ParityProbe.run(model.to(self.device), self.processor, self.device)
            fast = self._convert(model, candidate, torch)
            self.parity = reference.cosines(fast, self.dtype)
        except Exception as err:  # noqa: BLE001 - a model the probe cannot drive stays fp32
            _LOGGER.warning(
                "%s stays fp32: the %s parity check could not run (%s)",
                self.model_id,
                candidate,
                err,
            )
            del model
            return self._convert(self._load_weights(), "fp32", torch)
        if min(self.parity) >= PARITY_MIN_COSINE:
            _LOGGER.info(
                "%s runs %s: next-token logits match fp32 (cosine >= %.4f)",
                self.model_id,
                candidate,
                min(self.parity),
            )
            return fast
        _LOGGER.warning(
            "%s stays fp32: %s changes its next-token logits (cosine %.4f < %.2f)",
            self.model_id,
            candidate,
            min(self.parity),
            PARITY_MIN_COSINE,
        )
        del fast, model
        self.dtype = None
        return self._convert(self._load_weights(), "fp32", torch)

    def _convert(self, model: Any, precision: str, torch: Any) -> Any:
        """``model`` at ``precision`` on the engine's device (in place where torch allows)."""
        self.precision = "fp32"
        self.dtype = None
        located = vision_part(model) if precision == "mixed" else None
        if precision == "mixed" and self.device == "cpu" and located is not None:
            in_bf16 = [located, *cross_attention_projections(model)]
            kept = [(parent, name, getattr(parent, name)) for parent, name in in_bf16]
            for parent, name, _ in kept:
                setattr(parent, name, torch.nn.Identity())  # out of quantize_dynamic's reach
            try:
                model = _quantize_linear_layers(model, torch)
            finally:
                for parent, name, module in kept:
                    setattr(parent, name, module)
            for _, _, module in kept:
                run_in_bf16(module, torch)
            release_weights_file(model)
            self.precision = "mixed"
        elif precision in ("int8", "mixed") and self.device == "cpu":
            model = _quantize_linear_layers(model, torch)
            release_weights_file(model)
            self.precision = "int8"
        elif precision == "bf16":
            self.dtype = torch.bfloat16
        elif precision in ("fp16", "mixed") and self.device.startswith("cuda"):
            self.dtype = torch.float16
        if self.dtype is not None:
            model = model.to(self.dtype)
            self.precision = precision
        return model.to(self.device)

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
        with torch.inference_mode():
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


class ParityProbe:
    """fp32's greedy caption of a fixed picture and its next-token logits, to compare against.

    Teacher forcing: the candidate model is fed fp32's own tokens, so every step is compared
    on the same prefix and one early difference cannot hide or snowball the later ones.
    """

    def __init__(self, inputs: Any, sequences: Any, logits: Any) -> None:
        self.inputs = inputs
        self.sequences = sequences
        self.logits = logits

    @classmethod
    def run(
        cls,
        model: Any,
        processor: Any,
        device: str,
        images: list[Image.Image] | None = None,
        max_new_tokens: int = PARITY_TOKENS,
    ) -> ParityProbe:
        """Caption ``images`` (default: a fixed test picture) with the fp32 ``model``."""
        import torch

        inputs = processor(images=images or [probe_image()], return_tensors="pt").to(device)
        with torch.inference_mode():
            sequences = model.generate(
                pixel_values=inputs["pixel_values"],
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens,
                num_beams=1,
                do_sample=False,
            )
        return cls(inputs, sequences, teacher_forced_logits(model, inputs, sequences, None))

    def cosines(self, model: Any, dtype: Any) -> list[float]:
        """Per step, the smallest cosine over the batch between fp32's and ``model``'s logits."""
        candidate = teacher_forced_logits(model, self.inputs, self.sequences, dtype)
        return step_cosines(self.logits, candidate)


def teacher_forced_logits(model: Any, inputs: Any, sequences: Any, dtype: Any) -> Any:
    """Next-token logits (batch, steps, vocab) in fp32 for each prefix of ``sequences``."""
    import torch

    pixel_values = inputs["pixel_values"]
    if dtype is not None:
        pixel_values = pixel_values.to(dtype)
    key = "decoder_input_ids" if model.config.is_encoder_decoder else "input_ids"
    with torch.inference_mode():
        logits = model(pixel_values=pixel_values, **{key: sequences}).logits
    # Models that put the image in the same sequence (GIT) return logits for it too.
    return logits[:, -sequences.shape[1] :].float()


def step_cosines(reference: Any, candidate: Any) -> list[float]:
    """Cosine between mean-centred logit vectors, per step, worst over the batch.

    Centring first: a constant added to all logits changes no prediction, but would make two
    unrelated logit vectors look alike.
    """
    import torch

    ref = reference - reference.mean(dim=-1, keepdim=True)
    cand = candidate - candidate.mean(dim=-1, keepdim=True)
    cos = torch.nn.functional.cosine_similarity(ref, cand, dim=-1)  # (batch, steps)
    return [float(v) for v in cos.min(dim=0).values]


def probe_image(size: int = 384) -> Image.Image:
    """A fixed picture with some structure (gradients, shapes) for the parity check."""
    image = Image.linear_gradient("L").resize((size, size)).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle((size // 8, size // 4, size // 2, size * 3 // 4), fill=(170, 90, 40))
    draw.ellipse((size // 2, size // 8, size * 7 // 8, size // 2), fill=(30, 120, 200))
    draw.line((0, size - 1, size - 1, 0), fill=(250, 250, 250), width=max(1, size // 64))
    return image


def _quantize_linear_layers(model: Any, torch: Any) -> Any:
    """Every ``Linear`` layer of ``model`` as dynamic int8 (in place)."""
    # int8 Linear layers keep a reference to their fp32 bias: copy the biases out of the
    # memory-mapped checkpoint first, or they alone would pin all of it.
    for layer in model.modules():
        if isinstance(layer, torch.nn.Linear) and layer.bias is not None:
            layer.bias.data = layer.bias.data.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice, every call
        return torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )


#: Where image-to-text models keep their vision encoder: (path to the parent, attribute).
_VISION_PARTS = (("", "vision_model"), ("git", "image_encoder"), ("", "encoder"))


def vision_part(model: Any) -> tuple[Any, str] | None:
    """The module holding ``model``'s vision encoder and its attribute name, if known.

    BLIP's ``vision_model``, GIT's ``git.image_encoder``, a VisionEncoderDecoder's ``encoder``.
    """
    import torch

    for parent_path, name in _VISION_PARTS:
        parent = model
        for step in filter(None, parent_path.split(".")):
            parent = getattr(parent, step, None)
        if parent is not None and isinstance(getattr(parent, name, None), torch.nn.Module):
            if name == "encoder" and not getattr(model.config, "is_encoder_decoder", False):
                continue
            return parent, name
    return None


def run_in_bf16(module: Any, torch: Any) -> None:
    """Weights in bf16; fp32 inputs cast on the way in, float outputs back to fp32 on the way out.

    The rest of the model (the int8 decoder) keeps taking and giving fp32.
    """
    module.to(torch.bfloat16)

    def cast(value: Any, dtype: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.to(dtype)
        return value

    def into(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return (
            tuple(cast(a, torch.bfloat16) for a in args),
            {k: cast(v, torch.bfloat16) for k, v in kwargs.items()},
        )

    def out(_module: Any, _args: Any, _kwargs: Any, output: Any) -> Any:
        if isinstance(output, torch.Tensor):
            return cast(output, torch.float32)
        if isinstance(output, dict):  # transformers' ModelOutput is an ordered dict
            for key in list(output.keys()):
                output[key] = cast(output[key], torch.float32)
            return output
        if isinstance(output, tuple):
            return tuple(cast(v, torch.float32) for v in output)
        return output

    module.register_forward_pre_hook(into, with_kwargs=True)
    module.register_forward_hook(out, with_kwargs=True)


#: Cross-attention projections of the image features: (parent's name ends with, attribute).
_CROSS_PROJECTIONS = (
    (".crossattention.self", ("key", "value")),  # BLIP's text decoder
    (".encoder_attn", ("k_proj", "v_proj")),  # TrOCR and other VisionEncoderDecoder decoders
)


def cross_attention_projections(model: Any) -> list[tuple[Any, str]]:
    """The decoder's key/value projections of the image features, as (parent, attribute).

    They run once per image, over every image token (577 for BLIP-base): large matrix products
    that AMX does in bf16 several times faster than int8 does them, unlike the token-by-token
    projections, which read their weights for a single row each step.
    """
    found: list[tuple[Any, str]] = []
    for name, module in model.named_modules():
        for suffix, attributes in _CROSS_PROJECTIONS:
            if name.endswith(suffix):
                found.extend((module, a) for a in attributes if hasattr(module, a))
    return found


def cpu_has_amx() -> bool:
    """Whether this CPU multiplies bf16 matrices with AMX tiles (Linux: /proc/cpuinfo flags)."""
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def release_weights_file(model: Any) -> None:
    """Copy what is left of the fp32 weights out of the memory-mapped checkpoint.

    ``from_pretrained`` maps the safetensors file, and every tensor loaded from it keeps the
    whole mapping alive: after int8 conversion the few fp32 tensors left (embeddings, norms)
    would keep all ~900 MB of the base model's file resident.  Copies let the mapping go.
    """
    seen: set[int] = set()
    for module in model.modules():
        for tensor in [*module._parameters.values(), *module._buffers.values()]:
            if tensor is None or id(tensor) in seen:
                continue
            seen.add(id(tensor))
            tensor.data = tensor.data.clone()


def use_fused_attention(model: Any) -> int:
    """Run BLIP's vision attention through ``scaled_dot_product_attention``; how many modules.

    transformers' ``BlipAttention`` only has the eager form (matmul, softmax, matmul), which
    writes the full 577x577 score matrix per head to memory; the fused kernel computes the same
    values without it.  Other models are left as they are.
    """
    try:
        from transformers.models.blip.modeling_blip import BlipAttention
    except ImportError:  # pragma: no cover - BLIP is part of every transformers we support
        return 0
    patched = 0
    for module in model.modules():
        if isinstance(module, BlipAttention) and hasattr(module, "qkv"):
            module.forward = types.MethodType(_fused_blip_attention, module)  # type: ignore[method-assign]
            patched += 1
    return patched


def _fused_blip_attention(self: Any, hidden_states: Any, **_: Any) -> tuple[Any, None]:
    import torch

    batch, length, width = hidden_states.shape
    qkv = self.qkv(hidden_states).reshape(batch, length, 3, self.num_heads, self.head_dim)
    query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    context = torch.nn.functional.scaled_dot_product_attention(query, key, value, scale=self.scale)
    return self.projection(context.transpose(1, 2).reshape(batch, length, width)), None


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
