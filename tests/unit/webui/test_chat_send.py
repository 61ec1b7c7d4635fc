"""A message typed while a Chat reply streams is not wiped, and Send waits for the reply."""

from tunestudio.core.workspace import Workspace


def test_typing_during_a_streamed_reply_is_kept_and_send_waits(demo_ws):

    from tunestudio.webui.app import build_app

    demo = build_app(Workspace(demo_ws))
    ids = {getattr(c, "elem_id", None): c for c in demo.blocks.values()}
    send, box = ids["chat-send"], ids["chat-input"]
    fn = next(d for d in demo.fns.values() if (send._id, "click") in [tuple(t) for t in d.targets])
    assert fn.trigger_mode == "once"
    out = [o._id for o in fn.outputs]
    at_box, at_send = out.index(box._id), out.index(send._id)
    args = [c.value for c in fn.inputs]   # lang, source, side by side, message, the two histories, system, sampling...
    args[:7] = ["en", "model:tiny-demo", False, "Hello there", [], [], ""]
    args[7] = 12                                                    # max new tokens: a short reply
    yields = list(fn.fn(*args))
    assert len(yields) >= 3, "the reply did not stream"
    assert yields[0][at_box] == ""                                   # the sent message leaves the box at once
    for y in yields[1:]:                                             # later updates leave the box as typed
        assert not isinstance(y[at_box], str), y[at_box]
    assert all(y[at_send]["interactive"] is False for y in yields[:-1])   # Send off while it streams
    assert yields[-1][at_send]["interactive"] is True
