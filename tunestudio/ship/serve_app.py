"""transformers serve's app for `tunestudio serve`, with its generation bounded, and the uvicorn
server that stops on SIGTERM/SIGINT within seconds whatever it is doing.

Bounds kept where the tokens are, on the one path every endpoint takes to `model.generate`
(the generation manager; chat, completions and responses alike):
- the prompt, counted after the chat template, at most `max_prompt_tokens` (the model's context
  length by default): 400 before the model sees it;
- the answer's token budget cut to what fits in the context after the prompt (transformers asks
  for 1024 when the client names none);
- the time: a stopping criterion ends a generation `max_seconds` after it starts (time waiting
  for the model's one inference thread not counted), reported as finish_reason "length".
The server: uvicorn's own shutdown waits for every open request, a long generation included; here
it waits STOP_GRACE_S, and a timer ends the process FORCE_EXIT_S after the first signal regardless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import replace

import torch
import uvicorn
from fastapi.responses import JSONResponse
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.cli.serving.chat_completion import ChatCompletionHandler
from transformers.cli.serving.completion import CompletionHandler
from transformers.cli.serving.model_manager import ModelManager
from transformers.cli.serving.response import ResponseHandler
from transformers.cli.serving.server import build_server
from transformers.cli.serving.systemone import SystemOneHandler
from transformers.cli.serving.transcription import TranscriptionHandler
from transformers.cli.serving.utils import (
    DirectStreamer,
    GenerateManager,
    GenerationState,
    _GenerationCancelled,
    _StreamError,
)

from tunestudio.ship.serve_guard import CLIENT_GONE, Front, Limits, Refused

STOP_GRACE_S = 2      # open requests get this long after a stop signal
FORCE_EXIT_S = 4      # then the process ends, even one stuck in a long computation
STOPPING = threading.Event()   # set by a stop signal: every generation ends at its next token
log = logging.getLogger("tunestudio.serve")


def context_length(config) -> int | None:
    """The model's context length from its config (text_config for a multimodal model)."""
    for cfg in (config, getattr(config, "text_config", None)):
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            n = getattr(cfg, name, None)
            if isinstance(n, int) and n > 0:
                return n
    return None


def text_only(model) -> dict:
    """Text alone from a model that can also speak (Qwen2.5-Omni), as transformers' manager asks."""
    return {"generation_mode": "text"} if hasattr(model, "has_talker") else {}


class _StoppingNow(Refused):
    """A request whose turn came after a stop signal: 503 at once, so every open request is answered
    within the shutdown's grace instead of being cancelled mid-way (a 500 and a traceback)."""

    def __init__(self):
        super().__init__(503, "the server is stopping: send the request again once it is back", "server_stopping")


class TimeLimit(StoppingCriteria):
    """Ends a generation `seconds` after it starts, or when the server is stopping (a generation left
    running through the interpreter's exit slows that exit by seconds: the two threads trade the
    GIL at every step of the teardown). When it fires it sets the request's
    max_new_tokens to the tokens made so far: transformers' handlers then report finish_reason
    "length" (cut by a limit) rather than "stop" (the model's own end)."""

    def __init__(self, seconds: float, gen_config, prompt_tokens: int, gone: threading.Event | None = None):
        self.seconds, self.gen_config, self.prompt_tokens = seconds, gen_config, prompt_tokens
        self.gone = gone   # set when the request's client went away (serve_guard.CLIENT_GONE): no one to answer
        self.started = time.monotonic()

    def __call__(self, input_ids, scores, **kwargs):
        away = self.gone is not None and self.gone.is_set()
        if time.monotonic() - self.started < self.seconds and not STOPPING.is_set() and not away:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        made = input_ids.shape[-1] - self.prompt_tokens
        self.gen_config.max_new_tokens = made
        if away:
            log.warning("the client went away after %d tokens: its generation stopped", made)
        elif not STOPPING.is_set():
            log.warning("a generation reached the time limit of %s s after %d tokens: stopped (--max-seconds)",
                        self.seconds, made)
        return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class BoundedGenerateManager(GenerateManager):
    """transformers' sequential GenerateManager, with the prompt, the budget and the time bounded."""

    def __init__(self, limits: Limits):
        super().__init__()
        self.limits = limits

    def _bound(self, model, inputs, gen_config) -> int:
        """The prompt's length in tokens; Refused when it is too long; the budget cut to what fits."""
        prompt = inputs["input_ids"].shape[-1]
        context, most = self.limits.context, self.limits.prompt_tokens
        if most and prompt > most:
            raise Refused(400, f"the prompt is {prompt} tokens as the model reads it (after the chat template, for a "
                               f"chat); this server takes at most {most} (--max-prompt-tokens; the model's context: "
                               f"{context})", "context_length_exceeded")
        if context:
            room = context - prompt
            if room < 1:
                raise Refused(400, f"the prompt is {prompt} tokens and fills the model's context of {context} tokens: "
                                   "no room is left for an answer", "context_length_exceeded")
            if gen_config.max_new_tokens is None or gen_config.max_new_tokens > room:
                gen_config.max_new_tokens = room
        return prompt

    def generate_streaming(self, model, processor, inputs, gen_config, request_id, response_parser=None):
        prompt = self._bound(model, inputs, gen_config)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        rust_tokenizer = getattr(processor, "tokenizer", processor)._tokenizer
        streamer = DirectStreamer(rust_tokenizer, loop, queue, response_parser=response_parser)
        kwargs = {**inputs, "streamer": streamer, "generation_config": gen_config, "tokenizer": processor,
                  **text_only(model)}

        gone = CLIENT_GONE.get()   # read here, in the request's task: the thread below has no context

        def run() -> None:   # on the model's inference thread: the time counts from here
            try:
                if STOPPING.is_set():   # waited its turn while the server began to stop
                    raise _StoppingNow()
                model.generate(**kwargs, stopping_criteria=StoppingCriteriaList(
                    [TimeLimit(self.limits.max_seconds, gen_config, prompt, gone)]))
            except _GenerationCancelled:
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except Exception as e:
                loop.call_soon_threadsafe(queue.put_nowait, _StreamError(str(e)))

        self.submit(run)
        return queue, streamer

    async def generate_non_streaming(self, model, processor, inputs, gen_config, request_id):
        prompt = self._bound(model, inputs, gen_config)
        gone = CLIENT_GONE.get()

        def run():
            if STOPPING.is_set():   # waited its turn while the server began to stop: answered at once
                raise _StoppingNow()
            return model.generate(**inputs, generation_config=gen_config, tokenizer=processor, **text_only(model),
                                  stopping_criteria=StoppingCriteriaList(
                                      [TimeLimit(self.limits.max_seconds, gen_config, prompt, gone)]))

        sequences = await self.async_submit(run)
        generated = sequences[0, prompt:]
        return processor.decode(generated, skip_special_tokens=True), prompt, generated


class BoundedGenerationState(GenerationState):
    """One BoundedGenerateManager per model (sequential generation, no continuous batching)."""

    def __init__(self, limits: Limits):
        super().__init__(continuous_batching=False, compile=False, cb_config=None)
        self.limits = limits

    def get_manager(self, model_id: str, use_cb: bool = False):
        if model_id not in self._generate_managers:
            self._generate_managers[model_id] = BoundedGenerateManager(self.limits)
        return self._generate_managers[model_id]


def build_app(folder: str, alias: str, api_key: str | None, limits: Limits, hosts: set[str] | None,
              device: str = "auto") -> Front:
    """transformers serve's FastAPI app pinned to `folder` (loaded now), behind Front."""
    manager = ModelManager(device=device, dtype="auto", force_model=folder)
    model, _ = manager.load_model_and_processor(manager.process_model_name(folder))
    limits = replace(limits, context=context_length(model.config))
    state = BoundedGenerationState(limits)
    # the transcription and systemone handlers are built because build_server wants them; Front
    # never lets a request reach their routes
    app = build_server(manager, ChatCompletionHandler(model_manager=manager, generation_state=state,
                                                      chat_template_kwargs={}),
                       completion_handler=CompletionHandler(model_manager=manager, generation_state=state),
                       response_handler=ResponseHandler(model_manager=manager, generation_state=state,
                                                        chat_template_kwargs={}),
                       transcription_handler=TranscriptionHandler(manager, state),
                       systemone_handler=SystemOneHandler(model_manager=manager, generation_state=state,
                                                          chat_template_kwargs={}, decision_config=None),
                       generation_state=state)

    async def refused(_request, exc: Refused):
        return JSONResponse(exc.body(), status_code=exc.status)

    app.add_exception_handler(Refused, refused)
    return Front(app, folder, alias, api_key, limits, hosts)


class StoppingServer(uvicorn.Server):
    """uvicorn's server, whose first SIGTERM/SIGINT also ends every generation at its next token
    and arms a timer that ends the process, should the shutdown itself hang."""

    stopped_by: int | None = None

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        STOPPING.set()
        if self.stopped_by is None:
            self.stopped_by = int(sig)
            print(f"stopping on {signal.Signals(sig).name}: open requests get {STOP_GRACE_S} s, the process ends "
                  f"within {FORCE_EXIT_S} s", file=sys.stderr, flush=True)
            timer = threading.Timer(FORCE_EXIT_S, os._exit, (128 + int(sig),))
            timer.daemon = True
            timer.start()


def run_server(app, host: str, port: int) -> int | None:
    """Serve `app` until SIGTERM/SIGINT; returns that signal's number. uvicorn raises the signal
    again once it has shut down (the CLI's handler makes it a KeyboardInterrupt): taken here, so
    that the caller can end the process at once rather than wait out the interpreter's teardown
    (seconds of garbage collection with a model loaded, past the timer, which cannot run then)."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=STOP_GRACE_S)
    server = StoppingServer(config)
    try:
        server.run()
    except KeyboardInterrupt:
        if server.stopped_by is None:
            raise
    return server.stopped_by
