"""The Speech emulator's storage and paging, built for tens of thousands of entities per collection.

`Collection`: one collection's entities by id, kept in creation order (`seq`), with equality indexes on a few
fields (the values of displayName, description, locale, kind). Insert is O(1) amortized (new entities come last),
delete and reindex O(log n) plus a memmove, lookups by id or indexed value O(1).

`Pager`: a list page newest first, without copying, sorting or rendering the whole collection. Without a residual
predicate (no filter, or a filter an index answers exactly) a page is a slice: O(top) whatever `skip` is. With one
(say `status eq 'Running'`), matches are counted while walking; the position where a page stopped is remembered
(`cursors`) for the @nextLink that continues from it, so following nextLinks costs O(n) in total rather than
O(n) per page, and a page's cost does not depend on its offset. A `skip` no earlier page led to is walked from
the newest entity. A remembered position continues after the last entity shown, even if entities were created,
deleted or changed status in between (skip counted afresh could show one twice or miss one).

Entities need `id`, `seq` (increasing with creation) and `fields` (a dict); nothing else is assumed. Not
thread-safe: the emulator calls both under its lock.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from typing import Any, Callable, Iterable, Iterator, MutableMapping, Sequence

INDEXED_FIELDS = ("displayName", "description", "locale", "kind")


def _seq(entity: Any) -> int:
    return entity.seq


def _insert(items: list, entity: Any) -> None:
    if not items or items[-1].seq < entity.seq:
        items.append(entity)
    else:
        bisect.insort(items, entity, key=_seq)


def _remove(items: list, entity: Any) -> None:
    at = bisect.bisect_left(items, entity.seq, key=_seq)
    if at < len(items) and items[at] is entity:
        del items[at]


class Collection(MutableMapping[str, Any]):
    """id -> entity, iterated in creation order, with `ordered` (ascending seq) and `bucket(field, value)`."""

    def __init__(self, entities: Iterable[Any] = (), indexed: Iterable[str] = INDEXED_FIELDS) -> None:
        self.indexed = tuple(indexed)
        self._by_id: dict[str, Any] = {}
        self._ordered: list[Any] = []
        self._buckets: dict[tuple[str, str], list[Any]] = {}
        self._keys: dict[str, list[tuple[str, str]]] = {}  # id -> the buckets it is in
        for entity in entities:
            self[entity.id] = entity

    # -- MutableMapping --------------------------------------------------------------------------------------------

    def __getitem__(self, entity_id: str) -> Any:
        return self._by_id[entity_id]

    def __setitem__(self, entity_id: str, entity: Any) -> None:
        if entity_id in self._by_id:
            del self[entity_id]
        self._by_id[entity_id] = entity
        _insert(self._ordered, entity)
        self._index(entity_id, entity)

    def __delitem__(self, entity_id: str) -> None:
        entity = self._by_id.pop(entity_id)
        _remove(self._ordered, entity)
        self._unindex(entity_id, entity)

    def __iter__(self) -> Iterator[str]:
        return (entity.id for entity in self._ordered)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._by_id

    def values(self):  # in creation order, without a lookup per id
        return list(self._ordered)

    def clear(self) -> None:
        self._by_id.clear()
        self._ordered.clear()
        self._buckets.clear()
        self._keys.clear()

    # -- indexes ---------------------------------------------------------------------------------------------------

    @property
    def ordered(self) -> Sequence[Any]:
        """Every entity, oldest first (do not modify)."""
        return self._ordered

    def bucket(self, field: str, value: str) -> Sequence[Any]:
        """The entities whose `field` is `value`, oldest first (do not modify); `field` must be indexed."""
        if field not in self.indexed:
            raise KeyError(f"{field} is not indexed")
        return self._buckets.get((field, value), ())

    def reindex(self, entity: Any) -> None:
        """Call after changing an indexed field of a stored entity."""
        self._unindex(entity.id, entity)
        self._index(entity.id, entity)

    def _index(self, entity_id: str, entity: Any) -> None:
        keys = [(name, value) for name in self.indexed if isinstance(value := entity.fields.get(name), str)]
        for key in keys:
            _insert(self._buckets.setdefault(key, []), entity)
        self._keys[entity_id] = keys

    def _unindex(self, entity_id: str, entity: Any) -> None:
        for key in self._keys.pop(entity_id, ()):
            bucket = self._buckets.get(key)
            if bucket is not None:
                _remove(bucket, entity)
                if not bucket:
                    del self._buckets[key]


class Pager:
    """Pages newest first over sequences kept oldest first; remembers up to `cursors` stopping places."""

    def __init__(self, cursors: int = 256) -> None:
        self._cursors: OrderedDict[tuple[Any, int], int] = OrderedDict()
        self._limit = cursors

    def page(
        self,
        items: Sequence[Any],
        skip: int,
        top: int,
        match: Callable[[Any], bool] | None = None,
        listing: Any = None,
    ) -> tuple[list[Any], bool]:
        """(the page, whether more follow). `items` oldest first; `match` None means every item matches;
        `listing` identifies the sequence and filter, for remembering where a page stopped."""
        if match is None:
            end = len(items) - skip  # items[end - 1] is the first of the page
            if end <= 0:
                return [], False
            start = max(0, end - top)
            return items[start:end][::-1], start > 0
        position, matched = len(items) - 1, 0
        resume = self._cursors.get((listing, skip))
        if resume is not None:  # the previous page stopped before the entity with this seq
            position = bisect.bisect_right(items, resume, key=_seq) - 1
            matched = skip
        page: list[Any] = []
        while position >= 0:
            item = items[position]
            if match(item):
                if matched >= skip:
                    if len(page) == top:
                        self._remember((listing, skip + top), item.seq)
                        return page, True
                    page.append(item)
                matched += 1
            position -= 1
        return page, False

    def _remember(self, key: tuple[Any, int], seq: int) -> None:
        self._cursors[key] = seq
        self._cursors.move_to_end(key)
        while len(self._cursors) > self._limit:
            self._cursors.popitem(last=False)

    def clear(self) -> None:
        self._cursors.clear()
