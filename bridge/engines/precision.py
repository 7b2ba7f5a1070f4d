"""Which precision a model runs at, and converting it there.

``precision: auto`` (the default) runs fp16 on CUDA; on a CPU with AMX (Intel Xeon 4th
generation and later) ``mixed`` -- the vision encoder in bf16, which AMX multiplies several times
faster than anything else, and the text decoder's Linear layers in dynamic int8, since decoding a
token at a time is bound by reading weights, of which int8 reads half -- and elsewhere the
faster, timed at load on the check's frame, of dynamic int8 Linear layers throughout and
``openvino`` (the vision encoder compiled by OpenVINO in static int8, ``openvino_vision.py``,
the decoder in dynamic int8), where OpenVINO is installed; on CPUs that multiply bf16 both
fold BLIP's cross-attention into the image features (``image_attention.py``), and go without
the fold if it alone drifts.  Each only after checking, on this very model at load time, that
the fast form predicts the same next tokens as fp32 (teacher-forced logits, cosine of at least
``PARITY_MIN_COSINE`` at every step); a model that fails the check stays fp32.
"""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw, ImageFilter, ImageOps

from bridge.engines.image_attention import attend_to_image_features
from bridge.engines.thread_split import split_threads

if TYPE_CHECKING:
    from bridge.engines.probe_record import ProbeRecord

_LOGGER = logging.getLogger(__name__)
#: Smallest cosine between fp32 and fast-path next-token logits for ``auto`` to keep the fast path.
PARITY_MIN_COSINE = 0.99
#: Tokens generated for the load-time parity check (enough to cover a short caption).
PARITY_TOKENS = 12


@dataclass
class Converted:
    """A model at the precision it now runs at; ``dtype`` is what its inputs must be cast to."""

    model: Any
    precision: str = "fp32"
    dtype: Any = None
    #: Per-step cosines of the load-time parity check (``auto`` only).
    parity: list[float] | None = None
    #: Median seconds per candidate of the load-time speed probe (where there was a choice).
    probe: dict[str, float] | None = None
    #: The probe record the choice was read from, when an earlier start's probe made it.
    recorded: str | None = None
    #: Whether BLIP's cross-attention runs folded into the image features (``image_attention.py``).
    folded: bool = False


def choose(
    model: Any,
    wanted: str,
    *,
    device: str,
    processor: Any,
    reload: Callable[[], Any],
    label: str,
) -> Converted:
    """``model`` at the ``wanted`` precision; ``auto`` picks the fast form only if it keeps parity.

    Where ``auto`` (or ``openvino``) has more than one candidate, each that keeps parity is
    timed on the check's frame, alone and in a batch (``probe_seconds``), one at a time, and the
    fastest is kept; the choice is recorded (``probe_record.py``) so a later start on this CPU
    builds only it.
    ``reload`` gives a fresh fp32 copy (a conversion changes ``model`` in place).
    """
    import torch

    candidates = candidates_for(model, wanted, device)
    if not candidates:
        return convert(model, wanted, device, torch)
    try:
        reference = ParityProbe.run(model.to(device), processor, device)
        calibration = calibration_batches(processor, reference, device)
    except Exception as err:  # noqa: BLE001 - a model the probe cannot drive stays fp32
        _LOGGER.warning(
            "%s stays fp32: the %s parity check could not run (%s)", label, candidates[0], err
        )
        del model
        return convert(reload(), "fp32", device, torch)
    trial = Trial(reference, calibration, device, label, reload)
    record = None
    if len(candidates) > 1:
        from bridge.engines.probe_record import ProbeRecord

        record = ProbeRecord.for_model(model.config, candidates, torch.get_num_threads())
        recalled = trial.recall(model, record, candidates)
        if recalled is not None:
            return recalled
        if trial.used_model:  # converted to the recorded choice, which failed: let it go
            model = None
            gc.collect()
        candidates = [c for c in candidates if c not in trial.parity_failed]
    for index, candidate in enumerate(candidates):
        last = index == len(candidates) - 1
        fp32 = model if model is not None else reload()
        model = None
        trial.attempt(fp32, candidate, timed=len(candidates) > 1, keep=last)
        del fp32  # released (cycles too) before the next candidate is loaded: one at a time
        gc.collect()
    best = trial.winner(reload)
    if best is not None:
        if record is not None and best.probe:
            record.remember(best.precision, best.probe)
        _LOGGER.info(
            "%s runs %s: next-token logits match fp32 (cosine >= %.4f)%s",
            label,
            best.precision,
            min(best.parity or [1.0]),
            trial.figures(),
        )
        return best
    _LOGGER.warning("%s stays fp32: no faster form (%s) kept parity", label, ", ".join(candidates))
    kept = convert(reload(), "fp32", device, torch)
    kept.parity = trial.failed_parity
    return kept


def candidates_for(model: Any, wanted: str, device: str) -> list[str]:
    """The fast forms worth checking for ``wanted`` (empty: convert as asked, unchecked).

    On a CPU with AMX, ``mixed`` alone (its bf16 runs on AMX, measured fastest there); elsewhere
    the OpenVINO vision encoder where OpenVINO is installed, and dynamic int8, timed against
    each other at load.
    """
    if wanted not in ("auto", "openvino"):
        return []
    if device.startswith("cuda"):
        return ["fp16"] if wanted == "auto" else []
    has_vision = vision_part(model) is not None
    if wanted == "auto" and cpu_has_amx() and has_vision:
        return ["mixed"]
    from bridge.engines import openvino_vision

    if has_vision and openvino_vision.available():
        return ["openvino", "int8"] if wanted == "auto" else ["openvino"]
    if wanted == "openvino":
        _LOGGER.warning("precision openvino: OpenVINO and NNCF are not installed; trying int8")
    return ["int8"]


class Trial:
    """Candidates converted one at a time, each checked against fp32; the fastest kept.

    Only one candidate is alive at a time: each is built, checked, timed and let go before the
    next is loaded (two at once took peak RSS at load from ~2.0 to ~3.5 GB for BLIP-base); only
    the last one is kept, and the winner is rebuilt if it was an earlier one.
    """

    def __init__(
        self,
        reference: ParityProbe,
        calibration: list[Any],
        device: str,
        label: str,
        reload: Callable[[], Any],
    ) -> None:
        self.reference = reference
        self.reload = reload
        self.calibration = calibration
        self.device = device
        self.label = label
        #: The engine's threads: each candidate's encoder gets them, whatever the last one left.
        self.threads = _torch_threads()
        #: The last candidate built that kept parity (the only one held).
        self.kept: Converted | None = None
        #: Median seconds of a caption of the check's frame, per candidate that kept parity.
        self.seconds: dict[str, float] = {}
        self.failed_parity: list[float] | None = None
        #: Candidates that did not keep parity (or could not be checked).
        self.parity_failed: set[str] = set()
        #: Whether ``recall`` converted the model it was given (the caller must reload).
        self.used_model = False
        #: Whether candidates may fold BLIP's cross-attention; off once a folded one drifted.
        self.fold = True

    def attempt(self, model: Any, candidate: str, *, timed: bool, keep: bool) -> None:
        """Convert ``model`` to ``candidate``, check and time it; hold it only if ``keep``."""
        import torch

        self.kept = None
        torch.set_num_threads(self.threads)
        try:
            fast = convert(
                model, candidate, self.device, torch, calibration=self.calibration, fold=self.fold
            )
            del model
            fast.parity = self.reference.cosines(fast.model, fast.dtype)
        except Exception as err:  # noqa: BLE001 - a form that cannot run is not kept
            _LOGGER.warning("%s: %s could not be checked (%s)", self.label, candidate, err)
            self.parity_failed.add(candidate)
            return
        worst = min(fast.parity)
        if worst < PARITY_MIN_COSINE and fast.folded:
            _LOGGER.warning(
                "%s: %s with the cross-attention folded changes the next-token logits "
                "(cosine %.4f < %.2f): trying it, and the rest, unfolded",
                self.label,
                candidate,
                worst,
                PARITY_MIN_COSINE,
            )
            self.fold = False
            del fast
            gc.collect()
            self.attempt(self.reload(), candidate, timed=timed, keep=keep)
            return
        if worst < PARITY_MIN_COSINE:
            _LOGGER.warning(
                "%s: %s not kept: it changes the next-token logits (cosine %.4f < %.2f)",
                self.label,
                candidate,
                worst,
                PARITY_MIN_COSINE,
            )
            self.failed_parity = fast.parity
            self.parity_failed.add(candidate)
            return
        if timed:
            self.seconds[fast.precision] = probe_seconds(fast, self.reference)
        if keep:
            self.kept = fast

    def winner(self, reload: Callable[[], Any]) -> Converted | None:
        """The fastest candidate that kept parity: the one held, or rebuilt from ``reload``."""
        if self.seconds:
            fastest = min(self.seconds, key=self.seconds.__getitem__)
            if self.kept is None or self.kept.precision != fastest:
                self.kept = None
                gc.collect()
                self.attempt(reload(), fastest, timed=False, keep=True)
        if self.kept is not None:
            self.kept.probe = self.seconds or None
        return self.kept

    def recall(self, model: Any, record: ProbeRecord, candidates: list[str]) -> Converted | None:
        """``model`` at the recorded choice, if there is one and it still keeps parity."""
        recalled = record.recall()
        if recalled is None or recalled.precision not in candidates:
            return None
        self.used_model = True
        self.attempt(model, recalled.precision, timed=False, keep=True)
        if self.kept is None:
            _LOGGER.warning(
                "%s: the recorded choice %s no longer keeps parity: probing the others",
                self.label,
                recalled.precision,
            )
            record.forget()
            return None
        self.kept.probe = recalled.seconds or None
        self.kept.recorded = str(record.path)
        _LOGGER.info(
            "%s runs %s as recorded by an earlier start's probe on this CPU (%s), "
            "next-token logits match fp32 (cosine >= %.4f)",
            self.label,
            self.kept.precision,
            record.path,
            min(self.kept.parity or [1.0]),
        )
        return self.kept

    def figures(self) -> str:
        """The probe's timings for the log line (empty when nothing was timed)."""
        if not self.seconds:
            return ""
        timings = ", ".join(f"{name} {value:.3f} s" for name, value in self.seconds.items())
        return f"; seconds a frame, alone and in a batch of {PROBE_BATCH}, median: {timings}"


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


#: Timed runs per candidate in the load-time probe (after one warm-up run).
PROBE_RUNS = 3
#: The probe's batch: a lone camera's frame, and then this many cameras' frames together.
PROBE_BATCH = 4


def probe_seconds(fast: Converted, reference: ParityProbe) -> float:
    """Median seconds a frame ``fast`` takes over one caption alone and one of a full batch.

    Both count: forms that tie on one frame can differ by a third on a batch (the vision
    encoder's share grows with it), and the bridge batches as soon as cameras wait.
    """
    import statistics
    import time

    import torch

    pixel_values = reference.inputs["pixel_values"]
    if fast.dtype is not None:
        pixel_values = pixel_values.to(fast.dtype)
    batch = pixel_values[:1].expand(PROBE_BATCH, *pixel_values.shape[1:]).contiguous()
    steps = int(reference.sequences.shape[1])
    times: list[float] = []
    with torch.inference_mode():
        for run in range(PROBE_RUNS + 1):
            started = time.perf_counter()
            for pixels in (pixel_values[:1], batch):
                fast.model.generate(
                    pixel_values=pixels,
                    max_new_tokens=steps,
                    min_new_tokens=steps,
                    num_beams=1,
                    do_sample=False,
                )
            if run:
                times.append((time.perf_counter() - started) / (1 + PROBE_BATCH))
    return float(statistics.median(times))


def calibration_batches(processor: Any, reference: ParityProbe, device: str) -> list[Any]:
    """Pixel batches for static int8 ranges: the check's frame and variations of it."""
    base = probe_image()
    pictures = [
        base.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        base.transpose(Image.Transpose.ROTATE_90),
        ImageOps.invert(base),
        ImageOps.posterize(base, 3),
        base.filter(ImageFilter.GaussianBlur(4)),
        ImageOps.solarize(base.transpose(Image.Transpose.FLIP_TOP_BOTTOM), 128),
    ]
    batches = [reference.inputs["pixel_values"]]
    for picture in pictures:
        batches.append(processor(images=[picture], return_tensors="pt")["pixel_values"].to(device))
    return batches


def convert(
    model: Any,
    precision: str,
    device: str,
    torch: Any,
    calibration: list[Any] | None = None,
    *,
    fold: bool = True,
) -> Converted:
    """``model`` at ``precision`` on ``device`` (in place where torch allows).

    ``calibration``: pixel batches for the OpenVINO encoder's int8 ranges (``openvino`` only).
    ``fold``: whether the int8 and openvino forms may fold BLIP's cross-attention.
    """
    done = Converted(model)
    located = vision_part(model) if precision in ("mixed", "openvino", "int8") else None
    if precision == "mixed" and device == "cpu" and located is not None:
        in_bf16 = [located, *cross_attention_projections(model)]
        model = quantize_linear_layers_except(model, in_bf16, torch)
        for parent, name in in_bf16:
            run_in_bf16(getattr(parent, name), torch)
        release_weights_file(model)
        done.precision = "mixed"
    elif precision == "openvino" and device == "cpu" and located is not None:
        done.folded = fold and fold_image_attention(model, torch)
        model = quantize_linear_layers_except(model, [located], torch)
        use_openvino_vision(model, located, calibration or [], torch)
        vocabulary_in_bf16(model, torch)
        release_weights_file(model)
        done.precision = "openvino"
    elif precision in ("int8", "mixed", "openvino") and device == "cpu":
        done.folded = fold and fold_image_attention(model, torch)
        model = quantize_linear_layers(model, torch)
        vocabulary_in_bf16(model, torch)
        release_weights_file(model)
        done.precision = "int8"
    elif precision == "bf16":
        done.dtype = torch.bfloat16
    elif precision in ("fp16", "mixed") and device.startswith("cuda"):
        done.dtype = torch.float16
    if done.dtype is not None:
        model = model.to(done.dtype)
        done.precision = precision
    if done.precision in ("int8", "openvino") and located is not None:
        parent, name = located
        wide = [getattr(parent, name)]
        wide += [getattr(owner, part) for owner, part in cross_attention_projections(model)]
        split_threads(wide, torch.get_num_threads(), torch)
    done.model = model.to(device)
    return done


def fold_image_attention(model: Any, torch: Any) -> bool:
    """BLIP's cross-attention against the image features in bf16, where the CPU multiplies bf16.

    Elsewhere transformers' cached keys and values stay: in fp32 the folded products cost more
    a token than the projections they save (``image_attention.py``; bench/RESULTS.md).  Whether
    anything was folded.
    """
    if cpu_has("avx512_bf16") or cpu_has("amx_bf16"):
        return attend_to_image_features(model, torch.bfloat16) > 0
    return False


#: Embedding tables at least this long are vocabularies (BLIP-base's: 30,524 rows, 94 MB fp32).
VOCABULARY_ROWS = 10_000


def vocabulary_in_bf16(model: Any, torch: Any) -> int:
    """Word embedding tables kept in bf16, the rows looked up handed on in fp32; how many.

    A caption looks up a few dozen rows of a table that costs ~90 MB in fp32; half of that is
    memory the 1.2 GB budget needs.  Only once the Linear layers are int8 (no longer sharing
    their weights with the table).
    """
    shrunk = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding) and module.num_embeddings >= VOCABULARY_ROWS:
            module.to(torch.bfloat16)
            module.register_forward_hook(lambda _module, _args, rows: rows.float())
            shrunk += 1
    return shrunk


def quantize_linear_layers_except(model: Any, parts: list[tuple[Any, str]], torch: Any) -> Any:
    """Dynamic int8 for every ``Linear`` layer outside ``parts`` (each a (parent, attribute))."""
    kept = [(parent, name, getattr(parent, name)) for parent, name in parts]
    for parent, name, _ in kept:
        setattr(parent, name, torch.nn.Identity())  # out of quantize_dynamic's reach
    try:
        return quantize_linear_layers(model, torch)
    finally:
        for parent, name, module in kept:
            setattr(parent, name, module)


def use_openvino_vision(
    model: Any, located: tuple[Any, str], calibration: list[Any], torch: Any
) -> None:
    """Swap the vision encoder for its OpenVINO int8 form; the torch weights are let go."""
    from bridge.engines.openvino_vision import compile_vision

    parent, name = located
    if not calibration:
        raise ValueError("the OpenVINO encoder needs calibration frames")
    compiled = compile_vision(
        getattr(parent, name),
        calibration,
        model.config,
        threads=torch.get_num_threads(),
        bf16=cpu_has("avx512_bf16") or cpu_has("amx_bf16"),
    )
    setattr(parent, name, compiled)


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


def quantize_linear_layers(model: Any, torch: Any) -> Any:
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
    return cpu_has("amx_bf16")


def cpu_flags() -> set[str]:
    """The feature flags of the CPU we run on (Linux: /proc/cpuinfo; empty elsewhere)."""
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[-1].split())
    except OSError:
        pass
    return set()


def cpu_has(flag: str) -> bool:
    """Whether /proc/cpuinfo lists ``flag`` (``amx_bf16``, ``avx512_bf16``, ...)."""
    return flag in cpu_flags()


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
