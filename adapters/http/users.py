"""UserDirectory over the user service's HTTP contract (chosen here; the original's is unknown).

    POST {base}/users/lookup   {"globalUserIds": ["g1", "g2", ...]}          (at most batch_size)
      200 -> {"users": [{"globalUserId": "g1", "userId": "5f0c…"}, ...]}    (unknown ids left out,
                                                                            or userId null)

A POST, not a GET with a query string, so a batch of ids never meets a URL length limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from returns.result import Failure, Result, Success

from adapters.http.client import JsonHttpClient, JsonResponse
from domain.models import LookupFailure

DEFAULT_BATCH_SIZE = 100


class HttpUserDirectory:
    def __init__(self, client: JsonHttpClient, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._client = client
        self._batch_size = batch_size

    def user_ids_for(
        self, global_user_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        wanted = list(dict.fromkeys(g for g in global_user_ids if g))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), self._batch_size):
            batch = wanted[start : start + self._batch_size]
            what = f"user ids for {len(batch)} globalUserIds"
            match self._client.post("/users/lookup", {"globalUserIds": batch}):
                case Failure(error):
                    return Failure(error.to_lookup_failure(what))
                case Success(answer):
                    pairs = _user_pairs(answer)
                    if isinstance(pairs, str):
                        return Failure(answer.wrong_shape(pairs).to_lookup_failure(what))
                    found.update({g: pairs[g] for g in batch if g in pairs})
        return Success(found)


def _user_pairs(response: JsonResponse) -> dict[str, str] | str:
    """globalUserId -> userId, or why the body is not the contract's shape."""
    body = response.body
    users = body.get("users") if isinstance(body, Mapping) else None
    if not isinstance(users, list):
        return "expected {'users': [...]}"
    pairs: dict[str, str] = {}
    for index, user in enumerate(users):
        if not isinstance(user, Mapping):
            return f"users[{index}] is not an object"
        global_user_id, user_id = user.get("globalUserId"), user.get("userId")
        if not isinstance(global_user_id, str) or not global_user_id:
            return f"users[{index}].globalUserId is missing or not a string"
        if user_id is None:
            continue  # the service says: unknown
        if not isinstance(user_id, str) or not user_id:
            return f"users[{index}].userId is not a non-empty string"
        pairs[global_user_id] = user_id
    return pairs
