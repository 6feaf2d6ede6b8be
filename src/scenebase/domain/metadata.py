"""Metadata documents: write semantics (FACTS 1.5) and the search terms extracted from them.

Every asset type shares these rules, so sets, images, videos and annotations merge and search alike.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from scenebase.domain.timeutil import ISO_START, to_epoch

#: keys that describe stored bytes, not searchable metadata
NOT_INDEXED = frozenset({"object_access", "thumbnails", "owner", "id"})
#: longest string value that is indexed for exact match (longer ones are stored, not searchable)
MAX_TERM_LENGTH = 512
MAX_TERMS_PER_DOC = 2000
#: deepest nesting of objects and lists in one document (``{"a": {"b": 1}}`` is 2 deep); deeper documents are
#: refused when written, since every later read (JSON encoding, the index walk) would have to recurse that deep
MAX_DEPTH = 32
#: most values (objects, lists and scalars together) in one document
MAX_VALUES = 100_000


def merge(old: dict[str, Any], new: dict[str, Any], replace_lists: bool = False) -> dict[str, Any]:
    """Merge ``new`` into ``old``: dicts recursively, lists unioned (or replaced), scalars overwritten."""
    out = dict(old)
    for key, value in new.items():
        prev = out.get(key)
        if isinstance(prev, dict) and isinstance(value, dict):
            out[key] = merge(prev, value, replace_lists)
        elif isinstance(prev, list) and isinstance(value, list) and not replace_lists:
            merged = list(prev)
            for item in value:
                if item not in merged:
                    merged.append(item)
            out[key] = merged
        else:
            out[key] = value
    return out


Term = tuple[str, str | None, float | None]
#: a term inside an element of a list of objects, with the element's position in that list
ElementTerm = tuple[str, str | None, float | None, int]
#: most element terms one document may have (annotations with many entities have a few per entity)
MAX_ELEMENT_TERMS_PER_DOC = 20_000


class DocumentTooLarge(ValueError):
    """A document has more searchable values than the index takes for one asset."""


class InvalidDocument(ValueError):
    """A document cannot be stored: nested too deeply, too many values, or a number no index can hold. The
    message names the offending path (``aux.a.b``)."""


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored and searched, or None: NUL characters (PostgreSQL refuses them) and lone
    surrogates (``"\\udcff"`` in JSON: no UTF-8 exists for them)."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (an invalid \\uD800-\\uDFFF escape)"
    return None


def check_document(doc: Any, where: str = "metadata", max_depth: int = MAX_DEPTH) -> None:
    """Refuse what would break reads later: nesting deeper than ``max_depth``, more than :data:`MAX_VALUES`
    values, integers beyond the float range (``1e309`` written as an integer) and NaN/Infinity (which JSON cannot
    carry back out). Walks iteratively: a document nested thousands deep is an error here, not a RecursionError.
    Messages read ``<where>: <path> ...``, e.g. ``metadata: aux.a.b is nested more than 32 levels deep``."""
    if _certainly_valid(doc, max_depth):
        return
    stack: list[tuple[str, Any, int]] = [("", doc, 0)]
    count = 0
    while stack:
        path, value, depth = stack.pop()
        shown = path or "the document"
        count += 1
        if count > MAX_VALUES:
            raise InvalidDocument(f"{where}: more than {MAX_VALUES} values")
        if isinstance(value, dict | list | tuple):
            if depth >= max_depth:
                raise InvalidDocument(f"{where}: {shown} is nested more than {max_depth} levels deep")
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise InvalidDocument(f"{where}: {shown}: keys must be strings, got {key!r}")
                    problem = text_problem(key)
                    if problem:
                        raise InvalidDocument(f"{where}: {shown}: a key {problem}")
                    stack.append((f"{path}.{key}" if path else key, item, depth + 1))
            else:
                stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            problem = text_problem(value)
            if problem:
                raise InvalidDocument(f"{where}: {shown} {problem}")
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            try:
                float(value)
            except OverflowError:
                raise InvalidDocument(
                    f"{where}: {shown}: an integer of {value.bit_length()} bits is too large; numbers must fit a "
                    "64-bit float (about 1.8e308; store larger ones as strings)"
                ) from None
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidDocument(f"{where}: {shown}: {value!r} is not a number JSON can carry")


def _text_ok(text: str) -> bool:
    return "\x00" not in text and (text.isascii() or text_problem(text) is None)


def _certainly_valid(doc: Any, max_depth: int) -> bool:
    """True when ``doc`` passes :func:`check_document`; False when the walk that names the problem must decide.
    Every write passes here: this walk builds no paths and checks plain JSON types by identity, which makes it
    several times faster than the naming walk (a subclass, a huge integer or anything unusual goes there)."""
    if type(doc) not in _CONTAINERS:
        return _leaf_ok(doc)
    count = 1
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if depth >= max_depth:
            return False
        count += len(value)
        if count > MAX_VALUES:
            return False
        if type(value) is dict:
            for key in value:
                if type(key) is not str or not _text_ok(key):
                    return False
            value = value.values()
        for item in value:
            kind = type(item)
            if kind is str:
                if not _text_ok(item):
                    return False
            elif kind in _CONTAINERS:
                stack.append((item, depth + 1))
            elif not _leaf_ok(item):
                return False
    return True


_CONTAINERS = frozenset({dict, list, tuple})


def _leaf_ok(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return value.bit_length() <= 1000  # larger ones may not fit a float: the naming walk decides
    if kind is str:
        return _text_ok(value)
    return value is None or kind is bool


def index_terms(doc: dict[str, Any], skip: frozenset[str] = frozenset()) -> set[Term]:
    """Flatten a document into ``(dotted field, string value, numeric value)`` terms.

    Lists contribute each element under the same field (so ``aux.labels`` matches any label, and
    ``annotations_meta.provider`` any provider). Strings that look like ISO times also get their epoch as
    the numeric value, so range filters work on times. Booleans are the strings ``"true"``/``"false"``
    (SceneBox's client converts them so). ``skip`` names fields (top-level or dotted) left out with everything
    below them.
    """
    return indexed_terms(doc, skip)[0]


#: lists of objects indexed element by element for every asset type (``nested_filters``; FACTS 1.5 calls these
#: ``nested_fields``): the annotations of media and the entities of annotation documents
DEFAULT_NESTED_FIELDS = frozenset({"annotations_meta", "annotation_entities"})


def indexed_terms(
    doc: dict[str, Any], skip: frozenset[str] = frozenset(), nested: frozenset[str] = DEFAULT_NESTED_FIELDS
) -> tuple[set[Term], set[ElementTerm]]:
    """The flat terms of :func:`index_terms`, and the element terms: the same terms for every value inside an
    element of one of the ``nested`` lists of objects (``annotations_meta``, annotation entities, and fields an
    operator declared), with the element's position in that list. Conditions that must hold for one element
    (``nested_filters``) compare these positions: ``provider = p1`` and ``type = polygon`` bind when both terms
    have one position. Only declared lists are numbered: every element term is a row in three more indexes, and
    arbitrary lists in ``aux`` (detections of every image, say) would make ingestion a quarter slower.
    """
    terms: set[Term] = set()
    elements: set[ElementTerm] = set()
    for key, value in doc.items():
        if key in NOT_INDEXED or key in skip:
            continue
        _walk(str(key), value, terms, elements, None, skip, nested)
    _check_limits(terms, elements)
    return terms, elements


def _check_limits(terms: set[Term], elements: set[ElementTerm]) -> None:
    if len(terms) > MAX_TERMS_PER_DOC:
        raise DocumentTooLarge(f"document has {len(terms)} searchable values; the limit is {MAX_TERMS_PER_DOC}")
    if len(elements) > MAX_ELEMENT_TERMS_PER_DOC:
        raise DocumentTooLarge(
            f"document has {len(elements)} searchable values inside lists of objects; "
            f"the limit is {MAX_ELEMENT_TERMS_PER_DOC}"
        )


class TermChanges(NamedTuple):
    """The index rows a rewrite of one document removes and adds."""

    gone: set[Term]
    added: set[Term]
    gone_elements: set[ElementTerm]
    added_elements: set[ElementTerm]


def changed_terms(
    old: dict[str, Any],
    new: dict[str, Any],
    skip: frozenset[str] = frozenset(),
    nested: frozenset[str] = DEFAULT_NESTED_FIELDS,
) -> TermChanges:
    """What :func:`indexed_terms` of ``new`` has that ``old``'s lacks, and the reverse. Top-level values that
    ``new`` shares with ``old`` (the same object, as a merge keeps the fields a patch leaves alone) are walked once,
    not twice: linking an annotation to its image changes a few fields of a document that has many. Values that
    are merely equal are walked on both sides (``1 == True``, yet their terms differ)."""
    same = {k for k, v in new.items() if k in old and old[k] is v}
    old_t, old_e = indexed_terms({k: v for k, v in old.items() if k not in same}, skip, nested)
    new_t, new_e = indexed_terms({k: v for k, v in new.items() if k not in same}, skip, nested)
    kept_t, kept_e = indexed_terms({k: new[k] for k in same}, skip, nested)
    if len(new_t) + len(kept_t) > MAX_TERMS_PER_DOC or len(new_e) + len(kept_e) > MAX_ELEMENT_TERMS_PER_DOC:
        _check_limits(new_t | kept_t, new_e | kept_e)
    return TermChanges(old_t - new_t - kept_t, new_t - old_t - kept_t, old_e - new_e - kept_e,
                       new_e - old_e - kept_e)  # fmt: skip


def _walk(
    path: str,
    value: Any,
    out: set[Term],
    elements: set[ElementTerm],
    pos: int | None,
    skip: frozenset[str],
    nested: frozenset[str],
) -> None:
    # strings first: most values are strings; the order of the checks is the cost of every indexed value
    term: Term
    if isinstance(value, str):
        if len(value) > MAX_TERM_LENGTH:
            return
        num = None
        if ISO_START.match(value):
            try:
                num = to_epoch(value)
            except ValueError:
                num = None
        term = (path, value, num)
    elif isinstance(value, dict):
        for k, v in value.items():
            child = f"{path}.{k}"
            if child not in skip:
                _walk(child, v, out, elements, pos, skip, nested)
        return
    elif isinstance(value, list | tuple):
        # a declared list of objects numbers its elements; lists below it stay inside their element
        numbered = pos is None and path in nested and any(isinstance(v, dict) for v in value)
        for i, v in enumerate(value):
            _walk(path, v, out, elements, i if numbered else pos, skip, nested)
        return
    elif isinstance(value, bool):
        term = (path, "true" if value else "false", None)
    elif isinstance(value, int | float):
        f = float(value)
        if not math.isfinite(f):
            return
        term = (path, None, f)
    else:
        return  # None and other types are stored but not indexed
    out.add(term)
    if pos is not None:
        elements.add((*term, pos))


def project(doc: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """Keep only ``fields`` (dotted paths) of ``doc``; ``id`` is always kept."""
    out: dict[str, Any] = {"id": doc.get("id")}
    for f in fields:
        parts = f.split(".")
        src: Any = doc
        for p in parts:
            if not isinstance(src, dict) or p not in src:
                src = _MISSING
                break
            src = src[p]
        if src is _MISSING:
            continue
        dst = out
        for p in parts[:-1]:
            dst = dst.setdefault(p, {})
        dst[parts[-1]] = src
    return out


_MISSING = object()
