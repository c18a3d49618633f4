"""The constitution: numbered articles, a version number and a hash chain of versions.

Version 1 is genesis. Each amendment (only through the constitutional track) sets or
repeals articles and makes a new version whose hash is

    SHA-256(pack(["ekklesia/constitution/v1", prev_hash, version, [[number, text], ...]]))

over the *full* article list after the change, sorted by number; version 1's
prev_hash is 32 zero bytes. History keeps each version's changes, so any version's
text is the replay of versions 1..v.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from protocol import codec, crypto
from protocol.governance import keys
from protocol.governance.codes import Code, TxFailed
from protocol.governance.context import load, need, save
from protocol.kv import KVReader, Overlay
from protocol.wire import HASH, U32, U64, Int, Optional, Str, Struct, struct_list

DOMAIN = "ekklesia/constitution/v1"
MAX_ARTICLE = 4096  # bytes of one article's text
MAX_CHANGES = 64
MAX_ARTICLES = 1024


@dataclass(frozen=True, slots=True)
class Article(Struct):
    number: Annotated[int, Int(1, 2**32 - 1)]
    text: Annotated[str, Str(MAX_ARTICLE)]


@dataclass(frozen=True, slots=True)
class ArticleChange(Struct):
    number: Annotated[int, Int(1, 2**32 - 1)]
    text: Annotated[str | None, Optional(Str(MAX_ARTICLE))]  # None repeals the article


@dataclass(frozen=True, slots=True)
class ConstitutionVersion(Struct):
    MAX_BYTES = 8 * 1024 * 1024  # genesis may carry MAX_ARTICLES full articles

    version: Annotated[int, U32]
    hash: Annotated[bytes, HASH]
    prev_hash: Annotated[bytes, HASH]
    height: Annotated[int, U64]
    proposal_id: Annotated[int | None, Optional(U64)]  # None for genesis
    changes: Annotated[tuple[ArticleChange, ...], struct_list(ArticleChange, MAX_ARTICLES)]


def check_changes(changes: tuple[ArticleChange, ...]) -> str | None:
    if not changes:
        return "an amendment must change at least one article"
    numbers = [ch.number for ch in changes]
    if numbers != sorted(set(numbers)):
        return "article changes must be sorted by number with no repeats"
    if any(ch.text == "" for ch in changes):
        return "an article's text cannot be empty (repeal it instead)"
    return None


def articles(kv: KVReader) -> list[Article]:
    return [Article.decode(v) for _, v in kv.scan(keys.ARTICLE)]


def version_hash(prev_hash: bytes, version: int, arts: list[Article]) -> bytes:
    return crypto.sha256(codec.pack([DOMAIN, prev_hash, version, [[a.number, a.text] for a in arts]]))


def head(kv: KVReader) -> ConstitutionVersion:
    return need(kv, keys.CONSTITUTION_HEAD, ConstitutionVersion)


def _record(kv: Overlay, rec: ConstitutionVersion) -> None:
    save(kv, keys.CONSTITUTION_HEAD, rec)
    save(kv, keys.constitution_version(rec.version), rec)


def init(kv: Overlay, arts: tuple[Article, ...], height: int) -> ConstitutionVersion:
    for a in arts:
        save(kv, keys.article(a.number), a)
    changes = tuple(ArticleChange(a.number, a.text) for a in arts)
    rec = ConstitutionVersion(1, version_hash(bytes(32), 1, list(arts)), bytes(32), height, None, changes)
    _record(kv, rec)
    return rec


def amend(
    kv: Overlay, base_version: int, changes: tuple[ArticleChange, ...], height: int, proposal_id: int
) -> ConstitutionVersion:
    cur = head(kv)
    if cur.version != base_version:
        raise TxFailed(
            Code.WRONG_STATUS,
            f"the amendment was written against version {base_version}, the constitution is at {cur.version}",
        )
    for ch in changes:
        k = keys.article(ch.number)
        if ch.text is None:
            if kv.get(k) is None:
                raise TxFailed(Code.NOT_FOUND, f"article {ch.number} does not exist and cannot be repealed")
            kv.delete(k)
        else:
            save(kv, k, Article(ch.number, ch.text))
    arts = articles(kv)
    if len(arts) > MAX_ARTICLES:
        raise TxFailed(Code.INVALID, f"the constitution may hold at most {MAX_ARTICLES} articles")
    version = cur.version + 1
    rec = ConstitutionVersion(version, version_hash(cur.hash, version, arts), cur.hash, height, proposal_id, changes)
    _record(kv, rec)
    return rec


def history(kv: KVReader) -> list[ConstitutionVersion]:
    return [ConstitutionVersion.decode(v) for _, v in kv.scan(keys.CONSTITUTION_VERSION)]


def at_version(kv: KVReader, version: int) -> list[Article] | None:
    """The full text as of `version`, rebuilt from the history."""
    text: dict[int, str] = {}
    for v in range(1, version + 1):
        rec = load(kv, keys.constitution_version(v), ConstitutionVersion)
        if rec is None:
            return None
        for ch in rec.changes:
            if ch.text is None:
                text.pop(ch.number, None)
            else:
                text[ch.number] = ch.text
    return [Article(n, text[n]) for n in sorted(text)]


def verify_chain(kv: KVReader) -> bool:
    """Every version's hash follows from its predecessor and its rebuilt text, and
    the current articles are the head version's text."""
    prev = bytes(32)
    arts: list[Article] | None = []
    for rec in history(kv):
        arts = at_version(kv, rec.version)
        if arts is None or rec.prev_hash != prev or rec.hash != version_hash(prev, rec.version, arts):
            return False
        prev = rec.hash
    return prev == head(kv).hash and arts == articles(kv)
