"""A first session with the Python client: submit, watch, read, plot.

    pip install ./clients/python[pandas] matplotlib   # or: pip install -e ...
    ./scripts/run.sh                                  # the service, in another shell
    python examples/quickstart.py [URL]

Uses the demo account that ``scripts/run.sh`` creates (override with
BACKTEST_USERNAME / BACKTEST_PASSWORD or BACKTEST_TOKEN).
"""

from __future__ import annotations

import os
import sys

from backtest_client import Client

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
username = os.environ.get("BACKTEST_USERNAME", "demo")
password = os.environ.get("BACKTEST_PASSWORD", "demo-password")

# The five lines.
client = Client(url, username=username, password=password)
bt = client.backtests.submit(
    strategy="momentum", params={"top_n": 20}, start="2015-01-01", end="2019-12-31"
)
bt.wait(progress=True)  # a progress bar fed by the WebSocket
print(f"CAGR {bt.metrics['cagr']:.1%}, Sharpe {bt.metrics['sharpe_ratio']:.2f}")
equity = bt.equity()  # pandas Series on a DatetimeIndex

trades = bt.trades()  # every page, as a DataFrame
print(trades.groupby("symbol")["pnl"].sum().nlargest(5))

try:
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: skipping the plot")
else:
    ax = equity.plot(label="momentum top 20", title=f"backtest {bt.id[:8]}")
    ax.set_ylabel("equity ($)")
    ax.legend()
    plt.savefig("equity.png", dpi=120, bbox_inches="tight")
    print("equity curve written to equity.png")
client.close()
