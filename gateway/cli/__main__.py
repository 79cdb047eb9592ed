"""``python -m tribridge.cli``: the same entry point as the ``tribridge`` console script
(tests, benches and the relay netns harness start gateways this way), same exit status."""

import sys

from tribridge.cli.main import main

sys.exit(main())
