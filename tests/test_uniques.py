from typing import NamedTuple

from clicktochat.uniques import BITS_PER_VISITOR, GENERATIONS, RecentVisitors

WINDOW = 1800
SPAN = WINDOW // GENERATIONS  # 225 seconds a generation
T0 = 1_700_000_000 - 1_700_000_000 % SPAN  # the start of a generation


class Row(NamedTuple):
    at: int
    visitor: str | None
    robot: str | None = None


def hashes(prefix: int, n: int) -> list[str]:
    """n distinct visitor hashes as Salts makes them (16 hex digits), none shared between prefixes."""
    return [f"{prefix:04x}{i:012x}" for i in range(n)]


def click(visitors: RecentVisitors, at: int, visitor: str, before: str = "") -> int:
    """Decide one click, remember it as the writer does once written; 1 if unique."""
    (unique,), seen = visitors.decide([Row(at, visitor)], [before])
    visitors.remember(seen)
    return unique


def test_a_visitor_is_unique_again_only_after_the_window() -> None:
    visitors = RecentVisitors(WINDOW)
    assert click(visitors, T0, "ann") == 1
    assert click(visitors, T0 + 60, "ann") == 0
    assert click(visitors, T0 + 60, "bob") == 1
    assert click(visitors, T0 + WINDOW - 1, "ann") == 0  # the last click renews the window
    # 1,801 seconds later, within the window rounded up to a whole generation: still a repeat.
    assert click(visitors, T0 + 60 + WINDOW + 1, "bob") == 0
    assert click(visitors, T0 + WINDOW - 1 + WINDOW + 2 * SPAN, "ann") == 1  # past window + a generation
    assert click(visitors, T0 + WINDOW - 1 + WINDOW + 2 * SPAN + 1, "ann") == 0


def test_within_one_batch_the_first_click_is_the_unique_one() -> None:
    visitors = RecentVisitors(WINDOW)
    rows = [Row(T0, "ann"), Row(T0 + 5, "ann"), Row(T0 + 5, "bob", robot="Googlebot"), Row(T0, None)]
    rows += [Row(T0 + 3 * WINDOW, "ann")]
    uniques, seen = visitors.decide(rows, [""] * len(rows))
    assert uniques == [1, 0, 0, 0, 1]
    assert seen == {"ann": T0 + 3 * WINDOW}  # robots and rows without a visitor are not remembered
    assert visitors.count == 0  # nothing until the rows are written


def test_yesterdays_hash_is_matched_after_midnight() -> None:
    visitors = RecentVisitors(WINDOW)
    assert click(visitors, T0, "late-hash") == 1
    assert click(visitors, T0 + 120, "early-hash", before="late-hash") == 0
    assert click(visitors, T0 + 120, "other-hash", before="unknown") == 1


def test_a_restart_reloads_the_window_from_rows() -> None:
    before = RecentVisitors(WINDOW)
    rows = [(v, T0 + i) for i, v in enumerate(hashes(1, 500))]
    before.remember(rows)
    after = RecentVisitors(WINDOW)
    since = after.since(T0 + 600)
    assert since <= T0 - WINDOW + 600  # covers the whole window, rounded to a generation
    after.remember([(v, at) for v, at in rows if at >= since])
    uniques, _ = after.decide([Row(T0 + 600, v) for v in hashes(1, 500)], [""] * 500)
    assert sum(uniques) == 0
    uniques, _ = after.decide([Row(T0 + 600, v) for v in hashes(2, 500)], [""] * 500)
    assert sum(uniques) >= 495  # new ones: at most 1% false positives


def test_old_generations_are_dropped_and_memory_follows_traffic() -> None:
    visitors = RecentVisitors(WINDOW)
    visitors.remember([(v, T0) for v in hashes(1, 100_000)])
    busy = visitors.nbytes
    assert 100_000 * BITS_PER_VISITOR // 8 <= busy <= 4 * 100_000 * BITS_PER_VISITOR // 8
    # An hour later, a trickle: the spike's generation has left the window, and its memory.
    for i in range(3 * GENERATIONS):
        visitors.remember([(f"quiet-{i}", T0 + WINDOW + i * SPAN)])
    assert visitors.nbytes < busy / 4 and visitors.count == GENERATIONS + 1
    assert click(visitors, T0 + 4 * WINDOW, hashes(1, 1)[0]) == 1  # forgotten with its generation


def test_false_positives_stay_under_one_percent_at_the_designed_load() -> None:
    """A full window at a steady 20,000 visitors a generation (and a spike in the first), then
    20,000 visitors never seen: fewer than 1% of them may be taken for repeats."""
    visitors = RecentVisitors(WINDOW)
    for g in range(GENERATIONS + 1):
        visitors.remember([(v, T0 + g * SPAN) for v in hashes(g, 20_000)])
    assert not visitors.saturated
    at = T0 + GENERATIONS * SPAN
    known = visitors.decide([Row(at, v) for v in hashes(3, 2_000)], [""] * 2_000)[0]
    assert sum(known) == 0  # no false negatives: everybody in the window is a repeat
    fresh = visitors.decide([Row(at, v) for v in hashes(100, 20_000)], [""] * 20_000)[0]
    false_positives = 20_000 - sum(fresh)
    assert false_positives < 200, false_positives


def test_memory_never_exceeds_the_ceiling_whatever_the_traffic() -> None:
    ceiling = 9 * 16 * 1024  # 16 KiB a generation: 8,192 visitors at the designed rate
    visitors = RecentVisitors(WINDOW, ceiling=ceiling)
    for g in range(2 * GENERATIONS):
        visitors.remember([(v, T0 + g * SPAN) for v in hashes(g, 10_000)])
        assert visitors.nbytes <= ceiling
    assert visitors.saturated and visitors.nbytes > ceiling * 0.9
    # Past its design the filter still tells most new visitors apart: it degrades, never fails.
    fresh = visitors.decide([Row(T0 + 2 * GENERATIONS * SPAN, v) for v in hashes(999, 2_000)], [""] * 2_000)[0]
    assert sum(fresh) > 1_500


def test_a_batch_is_decided_as_each_click_would_be_alone() -> None:
    """decide() looks in the filters of each row's window once per batch; the answers must be
    those of seen() one click at a time: across generations, with yesterday's hashes, robots,
    repeats within the batch, and rows older or newer than the window of those remembered."""
    batched, alone = RecentVisitors(WINDOW), RecentVisitors(WINDOW)
    for visitors in (batched, alone):  # three generations remembered, then a gap
        visitors.remember([(v, T0 + i % 3 * SPAN) for i, v in enumerate(hashes(1, 3_000))])
    known, fresh = hashes(1, 3_000), hashes(2, 1_000)
    rows, before = [], []
    for i in range(2_000):
        at = T0 + (i % 12) * SPAN + i % 7  # some rows past the window of what was remembered
        robot = "bot" if i % 50 == 0 else None
        rows.append(Row(at, (known if i % 2 else fresh)[i % 1_000], robot))
        before.append(known[(i * 7) % 3_000] if i % 5 == 0 else "")
    uniques, seen = batched.decide(rows, before)

    expected, remembered = [], {}
    for row, hash_before in zip(rows, before, strict=True):
        unique = 0
        if row.visitor and not row.robot:
            unique = 1
            for key in (row.visitor, hash_before) if hash_before else (row.visitor,):
                last = remembered.get(key)
                if (last is not None and abs(last // SPAN - row.at // SPAN) <= GENERATIONS) or alone.seen(key, row.at):
                    unique = 0
                    break
            remembered[row.visitor] = max(row.at, remembered.get(row.visitor, row.at))
        expected.append(unique)
    assert uniques == expected and seen == remembered
    assert 0 < sum(uniques) < len(rows)  # both answers occur
