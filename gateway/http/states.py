"""Connection state constants shared by the listener's reader, responder and lifecycle."""

from tribridge.http.messages import HttpError

# phases of the request currently being read
IDLE, HEAD, BODY, NOBODY = 0, 1, 2, 3
# deadline kinds
DL_IDLE, DL_HEAD, DL_BODY, DL_LINGER = 0, 1, 2, 3
# reasons to pause reading (bit flags)
P_WRITE, P_PIPE, P_CLOSING = 1, 2, 4

#: sentinel abort reason: stop parsing silently
STOP = HttpError(0, "", "")
