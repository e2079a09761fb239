"""The scored-file transform with the compiled kernel (kernel/, docs/kernel.md) where it is built.

`kernel_transform_chunk(ctx, chunk)` gives exactly `transform_chunk`'s ChunkResult (the Python
transform, domain/scoring/transform.py, stays the reference): the kernel decides the rows it
can decide exactly (accepted or rejected for a blocked domain, the blacklist or an
international phone; NANP, '+', no or surely invalid phones; plain, no or surely invalid
emails; nothing to quote: docs/kernel.md lists the rules) and hands every other row back, as
runs of consecutive lines, to the Python transform; the two outputs are merged in row order.
A context the kernel cannot serve exactly (an encoder other than orjson's) goes to the Python
transform whole. tests/property/test_row_kernel.py holds the two to the same bytes.

`transform_for(choice)` is the SCORING_KERNEL setting: "auto" (the kernel when importable),
"rust" (the kernel, or a clear error when it is not built), "python".
"""

from __future__ import annotations

import importlib
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import Any

import orjson
import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata

from adapters.json_codec import exact_dumps
from domain.scoring.bands import NO_BAND
from domain.scoring.chunk_types import OPTIONAL_RECORD_FIELDS, Chunk, ChunkResult, TransformContext
from domain.scoring.emails import _SPECIAL_USE_DOTTED, _SPECIAL_USE_TLDS
from domain.scoring.phones import (
    _TYPE_FIELDS,
    NANP_COUNTRY_CODE,
    _home_parses_like_us,
    nanp_region_patterns,
)
from domain.scoring.reasons import Reason, Tag
from domain.scoring.records import RECORD_TYPE, dedupe_prefix
from domain.scoring.transform import transform_chunk

ChunkTransform = Callable[[TransformContext, Chunk], ChunkResult]
# A handed-back run: (where its CSV goes in the kernel's CSV, its lines [start, end), its bytes
# [begin, stop) in the chunk's data).
Cut = tuple[int, int, int, int, int]
CHOICES = ("auto", "rust", "python")
_TAGS = (Tag.INTL_PHONE, Tag.INVALID_PHONE, Tag.UNCONFIRMED_PHONE, Tag.INVALID_EMAIL)
# The kernel's rejection counts, in its order (its reason texts are the Python transform's).
_REJECTIONS = (Reason.BLOCKED_DOMAIN, Reason.BLACKLISTED_EMAIL, Reason.INTL_PHONE)
_NON_GEO = "001"  # phonenumbers' region of non-geographic calling codes: left to it
# The encoders whose bytes the kernel writes (orjson.dumps; exact_dumps is orjson for records).
_ORJSON_ENCODERS = (orjson.dumps, exact_dumps)


class KernelNotBuilt(RuntimeError):
    """SCORING_KERNEL=rust where the compiled kernel is not installed."""


def load_kernel() -> Any | None:
    """The compiled module, or None where it is not built (no Rust toolchain)."""
    try:
        return importlib.import_module("scoring_kernel")
    except ImportError:
        return None


# One kernel per worker process for the context it was last given: the pool installs one
# context per file, and building the kernel (blacklist and domain sets) costs once per file.
_last: tuple[TransformContext, Any] | None = None


def _kernel_for(ctx: TransformContext) -> Any | None:
    global _last
    if _last is not None and _last[0] is ctx:
        return _last[1]
    module = load_kernel()
    kernel = None if module is None else build_kernel(module, ctx)
    _last = (ctx, kernel)
    return kernel


def build_kernel(module: Any, ctx: TransformContext) -> Any | None:
    """A kernel for `ctx`, or None when it cannot write this context's bytes exactly."""
    if ctx.encode not in _ORJSON_ENCODERS:
        return None
    known = ctx.layout.known
    # A number without '+' is read as NANP only where the home region parses like the US; a
    # NANP number is domestic there (calling code 1), so only its validity is the kernel's.
    nanp = nanp_region_patterns() if _home_parses_like_us(ctx.home_region) else None
    return module.Kernel(
        width=ctx.layout.width,
        i_gid=known["globalUserId"],
        i_email=known["email"],
        i_phone=known["phone"],
        i_score=known["score"],
        i_confirmed=known.get("phoneConfirmed"),
        optional=[(name, known.get(name)) for name in OPTIONAL_RECORD_FIELDS],
        extras=list(ctx.layout.extras),
        record_type=RECORD_TYPE,
        campaign_id=ctx.campaign_id,
        source_uri=ctx.source_uri,
        tiers=[(tier.name, tier.low, tier.high) for tier in ctx.bands.tiers],
        no_band=NO_BAND,
        band_key=ctx.bands.salt,
        dedupe_prefix=dedupe_prefix(ctx.campaign_id),
        nanp=nanp,
        nanp_lengths=None if nanp is None else _nanp_lengths(),
        calling_codes=list(phonenumbers.COUNTRY_CODE_TO_REGION_CODE),
        home_calling_code=ctx.home_country_code,
        allow_intl=ctx.allow_intl_phones,
        special_tlds=set(_SPECIAL_USE_TLDS),
        special_dotted=list(_SPECIAL_USE_DOTTED),
        blocked=set(ctx.domains.blocked),
        allowed=set(ctx.domains.allowed),
        blacklist=set(ctx.blacklist),
        tag_names=[str(tag) for tag in _TAGS],
        max_record_bytes=ctx.max_record_bytes,
    )


def _nanp_lengths() -> list[int] | None:
    """Every national number length any NANP region's number descriptions take (the kernel
    calls a number of none of these lengths invalid), or None when a description leaves its
    lengths open (then the kernel leaves such numbers to phonenumbers)."""
    lengths: set[int] = set()
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[NANP_COUNTRY_CODE]:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:  # pragma: no cover - phonenumbers ships all NANP regions
            continue
        for name in ("general_desc", *_TYPE_FIELDS):
            desc = getattr(metadata, name)
            if desc is None or not desc.national_number_pattern:
                continue
            if not desc.possible_length:
                return None
            lengths.update(desc.possible_length)
    return sorted(lengths)


_Desc = tuple[str, list[int]]
_CountryTable = tuple[str | None, list[tuple[str, str | None, _Desc | None, list[_Desc]]]]


@cache
def _country_table(calling_code: int) -> _CountryTable | None:
    """What the kernel needs to validate '+' numbers of `calling_code` exactly as phonenumbers
    does (kernel/src/lib.rs, `plus_phone`): the main region's national prefix for parsing and
    per region its code, leading digits, general description and number types; None for the
    non-geographic codes. Given per code on first sight: loading every region's metadata up
    front costs ~0.7 s a process."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(calling_code, ())
    if not regions or _NON_GEO in regions:
        return None
    main = PhoneMetadata.metadata_for_region(regions[0])
    if main is None:  # pragma: no cover - phonenumbers ships every region it lists
        return None
    table = []
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:  # pragma: no cover
            return None
        # With one pattern for both, phonenumbers does not try mobile after fixed_line fails.
        names = [
            n
            for n in _TYPE_FIELDS
            if n != "mobile" or not metadata.same_mobile_and_fixed_line_pattern
        ]
        types = [_desc(getattr(metadata, name)) for name in names]
        table.append(
            (
                region,
                metadata.leading_digits or None,
                _desc(metadata.general_desc),
                [desc for desc in types if desc is not None],
            )
        )
    return main.national_prefix_for_parsing or None, table


def _desc(desc: Any) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return desc.national_number_pattern, list(desc.possible_length or ())


def run_kernel(kernel: Any, chunk: Chunk) -> tuple[Any, ...]:
    """`kernel.run` on `chunk`: (csv, cuts, keys, payloads, record rows, tag counts, tagged,
    band counts, rejection counts). The calling codes it lacked tables for are given to it
    after (their rows went to Python this time; the next chunk's will not)."""
    *result, wanted = kernel.run(chunk.data, chunk.first_row, [o for o, _ in chunk.overlong])
    for calling_code in wanted:
        kernel.add_country(calling_code, _country_table(calling_code))
    return tuple(result)


def kernel_transform_chunk(ctx: TransformContext, chunk: Chunk) -> ChunkResult:
    """`transform_chunk(ctx, chunk)`, the common rows done by the compiled kernel."""
    kernel = _kernel_for(ctx)
    if kernel is None:
        return transform_chunk(ctx, chunk)
    overlong = dict(chunk.overlong)
    csv, cuts, keys, payloads, rows, tag_counts, tagged, band_counts, refusals = run_kernel(
        kernel, chunk
    )
    tags = {str(tag): n for tag, n in zip(_TAGS, tag_counts, strict=True) if n}
    names = [tier.name for tier in ctx.bands.tiers] + [NO_BAND]
    bands = {name: n for name, n in zip(names, band_counts, strict=True) if n}
    rejected = {str(r): n for r, n in zip(_REJECTIONS, refusals, strict=True) if n}
    if not cuts:
        return ChunkResult(
            rows=chunk.line_count,
            csv=csv,
            partition_keys=keys,
            payloads=payloads,
            record_rows=rows,
            rejected=rejected,
            tags=tags,
            tagged=tagged,
            bands=bands,
        )
    return _merge(ctx, chunk, overlong, kernel_part=(csv, cuts, keys, payloads, rows),
                  counts=(tags, tagged, bands, rejected))  # fmt: skip


def _merge(
    ctx: TransformContext,
    chunk: Chunk,
    overlong: dict[int, int],
    kernel_part: tuple[bytes, list[Cut], list[str], list[bytes], list[int]],
    counts: tuple[dict[str, int], int, dict[str, int], dict[str, int]],
) -> ChunkResult:
    """The kernel's rows and the Python transform's result for the rows handed back, in row
    order. The handed-back lines go to the Python transform in one call (one call per run cost
    more than the kernel saved), numbered as in the file (Chunk.row_numbers)."""
    csv, cuts, keys, payloads, rows = kernel_part
    data, first_row = chunk.data, chunk.first_row
    numbers: list[int] = []
    back_overlong: list[tuple[int, int]] = []
    for _, start, end, _, _ in cuts:
        for offset in range(start, end):
            if offset in overlong:
                back_overlong.append((len(numbers), overlong[offset]))
            numbers.append(first_row + offset)
    back = Chunk(
        first_row,
        b"\n".join([data[begin:stop] for _, _, _, begin, stop in cuts]),
        tuple(back_overlong),
        tuple(numbers),
    )
    part = transform_chunk(ctx, back)
    lines = part.csv.split(b"\r\n")
    if len(lines) != len(numbers) + 1:  # pragma: no cover - no field holds a line feed
        return transform_chunk(ctx, chunk)
    out_csv: list[bytes] = []
    out_keys: list[str] = []
    out_payloads: list[bytes] = []
    out_rows: list[int] = []
    at_csv = at_record = at_line = at_part = 0
    part_rows = part.record_rows
    for csv_at, start, end, _, _ in cuts:
        out_csv.append(csv[at_csv:csv_at])
        at_csv = csv_at
        out_csv.append(b"\r\n".join([*lines[at_line : at_line + end - start], b""]))
        at_line += end - start
        first, last = first_row + start, first_row + end
        upto = bisect_left(rows, first, at_record)
        out_keys += keys[at_record:upto]
        out_payloads += payloads[at_record:upto]
        out_rows += rows[at_record:upto]
        at_record = upto
        part_upto = bisect_left(part_rows, last, at_part)
        out_keys += part.partition_keys[at_part:part_upto]
        out_payloads += part.payloads[at_part:part_upto]
        out_rows += part_rows[at_part:part_upto]
        at_part = part_upto
    out_csv.append(csv[at_csv:])
    tags, bands, rejected = Counter(counts[0]), Counter(counts[2]), Counter(counts[3])
    tags.update(part.tags)
    bands.update(part.bands)
    rejected.update(part.rejected)
    return ChunkResult(
        rows=chunk.line_count,
        csv=b"".join(out_csv),
        partition_keys=out_keys + keys[at_record:],
        payloads=out_payloads + payloads[at_record:],
        record_rows=out_rows + rows[at_record:],
        rejected=dict(rejected),
        tags=dict(tags),
        tagged=counts[1] + part.tagged,
        bands=dict(bands),
    )


def transform_for(choice: str) -> ChunkTransform:
    """The chunk transform SCORING_KERNEL names (module docstring)."""
    if choice == "python":
        return transform_chunk
    if choice == "rust":
        if load_kernel() is None:
            raise KernelNotBuilt(
                "SCORING_KERNEL=rust but the compiled kernel (scoring_kernel) is not installed: "
                "build it with `make install` where cargo exists (docs/kernel.md), or set "
                "SCORING_KERNEL=auto"
            )
        return kernel_transform_chunk
    if choice == "auto":
        return kernel_transform_chunk if load_kernel() is not None else transform_chunk
    raise ValueError(f"SCORING_KERNEL must be one of {', '.join(CHOICES)}, got {choice!r}")
