from collections.abc import Callable
from typing import Any

def encode_chain(
    fields: list[tuple[str, str, list[str], dict[str, Any], str | None]],
    prev: str,
    first_seq: int,
    stamp: str,
    offset: int,
    max_bytes: int,
    dumps: Callable[[Any], bytes],
) -> tuple[bytes, bytes, bytes, str, int]: ...
def plain_json(value: Any, depth: int = 1) -> bool: ...
