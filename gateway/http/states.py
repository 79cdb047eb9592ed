"""Connection state constants shared by the listener's reader, responder and lifecycle."""

from tribridge.http.messages import HttpError

# phases of the request currently being read
IDLE, HEAD, BODY, NOBODY = 0, 1, 2, 3
# deadline kinds
DL_IDLE, DL_HEAD, DL_BODY, DL_LINGER = 0, 1, 2, 3
# reasons to pause reading (bit flags); P_STREAM: a streamed exchange's own back-pressure
P_WRITE, P_PIPE, P_CLOSING, P_STREAM = 1, 2, 4, 8

#: sentinel abort reason: stop parsing silently
STOP = HttpError(0, "", "")
