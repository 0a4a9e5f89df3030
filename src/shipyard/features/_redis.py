"""The Redis online store: one hash per (view, entity), conditional writes in a Lua script.

``redis://host:port/db?prefix=NAME`` keeps several feature stores apart in one Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shipyard.errors import ConfigError, StoreUnavailableError
from shipyard.features.online import OnlineRow

# Replace a value only with a newer one (event time, then created time), in one round trip
# per batch: a re-run materialization never overwrites a fresher pushed value.
_WRITE_NEWER = """
for i = 1, #KEYS do
  local b = (i - 1) * 3
  local e = tonumber(ARGV[b + 1])
  local c = tonumber(ARGV[b + 2])
  local cur = redis.call('HMGET', KEYS[i], 'e', 'c')
  local ce = tonumber(cur[1])
  if (not ce) or ce < e or (ce == e and tonumber(cur[2]) <= c) then
    redis.call('HSET', KEYS[i], 'e', ARGV[b + 1], 'c', ARGV[b + 2], 'v', ARGV[b + 3])
  end
end
return #KEYS
"""
_BATCH = 1000


class RedisOnlineStore:
    """Feature values in Redis hashes ``{prefix}:{view}:{key}``."""

    def __init__(self, uri: str) -> None:
        try:
            import redis
        except ImportError as exc:
            raise ConfigError("the Redis online store needs the redis extra: pip install 'shipyard[redis]'") from exc
        parts = urlsplit(uri)
        query = dict(parse_qsl(parts.query))
        self.prefix = query.pop("prefix", "shipyard:features")
        self.uri = uri
        self._client: Any = redis.Redis.from_url(urlunsplit(parts._replace(query=urlencode(query))))
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self._script: Any = self._client.register_script(_WRITE_NEWER)

    def _key(self, view: str, key: str) -> str:
        return f"{self.prefix}:{view}:{key}"

    def write(self, view: str, rows: Sequence[OnlineRow]) -> None:
        try:
            for i in range(0, len(rows), _BATCH):
                chunk = rows[i : i + _BATCH]
                args: list[Any] = []
                for row in chunk:
                    args += [row.event_us, row.created_us, row.payload]
                self._script(keys=[self._key(view, row.key) for row in chunk], args=args)
        except self._errors as exc:
            raise StoreUnavailableError(f"Redis online store {self._safe_uri()} failed: {exc}") from exc

    def read(self, view: str, keys: Sequence[str]) -> list[OnlineRow | None]:
        try:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self._key(view, key), "e", "c", "v")
            replies = pipe.execute()
        except self._errors as exc:
            raise StoreUnavailableError(f"Redis online store {self._safe_uri()} failed: {exc}") from exc
        out: list[OnlineRow | None] = []
        for key, (e, c, v) in zip(keys, replies, strict=True):
            out.append(None if e is None else OnlineRow(key, int(e), int(c), v.decode()))
        return out

    def delete_view(self, view: str) -> None:
        keys = list(self._client.scan_iter(match=f"{self.prefix}:{view}:*", count=1000))
        for i in range(0, len(keys), _BATCH):
            self._client.delete(*keys[i : i + _BATCH])

    def close(self) -> None:
        self._client.close()

    def _safe_uri(self) -> str:
        from shipyard.store import redact_uri

        return redact_uri(self.uri)
