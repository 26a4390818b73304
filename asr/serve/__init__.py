"""``asr serve``: a transcription server over the one recognizer (ONNX backend, no torch), with
streaming over a WebSocket, an OpenAI-compatible endpoint and a browser page.

Needs the ``serve`` extra (``pip install 'asr[serve]'``: Starlette, uvicorn, websockets,
python-multipart). ``create_app(ServeConfig(model=DIR))`` gives the ASGI application; ``asr serve``
runs it with uvicorn, on loopback unless ``--host`` says otherwise.

HTTP (errors are JSON ``{"error": {"message", "type", "code"}}``, see :mod:`asr.serve.app`)
-----------------------------------------------------------------------------------------
``GET /``                         the browser page (microphone and file upload; ``static/``)
``GET /healthz``                  ``{"status": "ok", "model", "api_key_required", "streams", "uploads"}``,
                                  no API key needed (for load balancers)
``GET /v1/models``                the loaded package: id, format version, rate, model shape, decode settings
``POST /v1/transcribe``           audio as the multipart field ``file`` or as the raw body (audio/*
                                  Content-Type), any format the runtime reads ->
                                  ``{"text", "duration", "model", "segments": [{"start", "end", "text",
                                  "words"}], "words"}`` (segments from ``Recognizer.transcribe_long``;
                                  ``text`` is their texts joined; ``words`` (word, start, end,
                                  confidence) are filled when asked: ``words=true``, or
                                  ``timestamp_granularities[]=word`` on the OpenAI route)
``POST /v1/audio/transcriptions`` OpenAI's shape: multipart ``file``, ``model`` (any name),
                                  ``response_format`` json | text | srt | vtt | verbose_json

With ``--api-key KEY`` every ``/v1`` route needs ``Authorization: Bearer KEY`` (the WebSocket also
takes ``?api_key=KEY``, since browsers cannot set its headers).

WebSocket ``/v1/stream``
------------------------
Client to server:

1. one text message, a JSON object: ``{"sample_rate": 48000, "format": "pcm_s16le"}``; format is
   ``pcm_s16le`` (16-bit signed integers) or ``f32le`` (32-bit floats in [-1, 1]), mono,
   little-endian, at any rate from 1000 to 384000 Hz (the server resamples to the model's);
2. binary messages of audio in that format, any length (a whole number of samples), sent as it
   is captured (send silence too: a stream without a message for ``idle_seconds`` is closed);
3. the text message ``{"type": "end"}`` when the audio is over. (Closing the socket instead
   drops what was not final yet.)

Server to client, text messages holding one JSON object each (times in seconds of stream audio;
``audio_time`` = seconds received when the event was made):

* ``{"type": "ready", "sample_rate", "format", "max_seconds", "model"}`` once the header is taken;
* ``{"type": "partial", "text", "start", "end", "audio_time"}`` when the open segment's text changes;
* ``{"type": "final", "text", "start", "end", "audio_time", "words"}`` once per segment (after an endpoint,
  i.e. a pause, and at the end): :class:`asr.runtime.Stream`'s events;
* ``{"type": "end", "text", "audio_seconds", "reason"}`` after the last final; ``text`` is all
  finals joined, ``reason`` is ``"end"`` (the client's end message; the server then closes with
  1000) or ``"max_stream_seconds"`` (the stream reached ``--max-stream-seconds``: its audio up
  to the limit is decoded, then the server closes with 1008);
* ``{"type": "error", "code", "message"}`` just before the server closes for an error, with code
  1003 binary data before the header, an unknown format, or a text message that is not the end
  message; 1007 a header that is not a JSON object or has a bad sample_rate, a binary message
  that is not a whole number of samples, NaN/Inf or out-of-range floats; 1008 a missing or wrong
  API key, no message for ``idle_seconds``, or results left unread for as long; 1013 every
  stream recognizer is in use (``--max-streams``): try again later. A message over
  ``max_message_bytes`` is closed by uvicorn with 1009, a server bug with 1011.

Limits: each live stream holds one recognizer of a pool of ``--max-streams``, each upload one of
``--workers`` (waiting up to ``queue_seconds``, then 503), so memory is bounded by the number of
recognizers; decoding runs on a thread pool (onnxruntime releases the GIL), so a slow client or a
long file does not stall the others.
"""
from __future__ import annotations

from .config import ServeConfig

__all__ = ["ServeConfig", "create_app"]



def __getattr__(name):
    if name == "create_app":  # imported on use: Starlette is only needed once a server is made
        from .app import create_app

        return create_app
    raise AttributeError(name)
