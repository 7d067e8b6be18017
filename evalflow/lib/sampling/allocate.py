"""Proportional allocation by largest remainder, capped by what each stratum still holds.

quota_s = floor(R * w_s / W) for every stratum s with room, then the units left go one each to
the largest fractional parts (ties: larger weight, then key). A stratum whose quota exceeds its
room keeps its room and the excess is dealt again over the others (water-filling), so the
quotas sum to min(R, total room).
"""

from __future__ import annotations

import math


def largest_remainder(weights: dict[str, float], total: int, room: dict[str, int]) -> dict[str, int]:
    quotas = {k: 0 for k in weights}
    open_keys = [k for k in weights if room.get(k, 0) > 0 and weights[k] > 0]
    left = min(int(total), sum(room.get(k, 0) for k in open_keys))
    while left > 0 and open_keys:
        w_sum = sum(weights[k] for k in open_keys)
        exact = {k: left * weights[k] / w_sum for k in open_keys}
        share = {k: math.floor(exact[k]) for k in open_keys}
        spare = left - sum(share.values())
        by_remainder = sorted(open_keys, key=lambda k: (-(exact[k] - share[k]), -weights[k], k))
        for k in by_remainder[:spare]:
            share[k] += 1
        for k in open_keys:
            grant = min(share[k], room[k] - quotas[k])
            quotas[k] += grant
            left -= grant
        open_keys = [k for k in open_keys if quotas[k] < room[k]]
    return quotas
