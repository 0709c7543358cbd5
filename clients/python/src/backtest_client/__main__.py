"""``python -m backtest_client``: the ``backtest-client`` command."""

import sys

from backtest_client.cli import main

sys.exit(main())
