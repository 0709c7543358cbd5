"""bt configured to this engine's sizing convention (for the parity test and benchmark).

bt 1.4.1's ``Rebalance`` takes the sizing base *before* closing positions that left
the targets, so its buys spend the closing costs a second time and cash goes negative
by up to those costs. This engine sizes on the value *after* the closings (and never
overdraws). Putting :class:`CloseDropped` before ``Rebalance`` makes bt do the same:
the dropped names are closed and the tree updated first, so ``Rebalance`` finds nothing
left to close and takes the post-closing value as its base.
"""

from __future__ import annotations

from typing import Any

import bt
import numpy as np


class CloseDropped(bt.Algo):  # type: ignore[misc]
    """Close every child not in ``temp['weights']``, then update the tree."""

    def __call__(self, target: Any) -> bool:
        targets = target.temp.get("weights")
        if targets is None:
            return True
        for name, child in target.children.items():
            value = child.value
            if name not in targets and value != 0.0 and not np.isnan(value):
                target.close(name, update=False)
        target.root.update(target.now)
        return True
