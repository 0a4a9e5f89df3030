"""Walk routes: synthetic city data, and a model that ranks routes for a user in a context.

The city has ``ROUTES`` walking routes (start point, length, shade, scenery, hills) and
``USERS`` users with a home, a preferred length and tastes. Their history is generated
from a hidden utility: near routes of the preferred length win, shade matters on hot
days, hills and long routes lose in the rain, scenery pleases some users more.

The model scores (user, context, route) candidates: a gradient-boosted classifier learns
P(walked) from pair features (distance from the user's location to the route's start,
the route's traits, the weather and hour, the user's history with routes like it and
with this route). :class:`RouteRanker` wraps it as one model that takes a context row
(``user_id``, ``lat``, ``lon``, ``temp_c``, ``rain_mm``, ``hour``) and answers the user's
top 10 routes as ``rank_1`` ... ``rank_10`` (route ids, best first). Ties are broken by
route id, and each row is scored on its own, so the answer for a context is the same
whether it comes in a batch of thousands or alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

ROUTES = 40
USERS = 60
SESSIONS = 25  # walks in each user's history
TOP = 10
CENTER = (48.8566, 2.3522)  # the synthetic city sits on Paris; about 6 km across
CONTEXT = ["user_id", "lat", "lon", "temp_c", "rain_mm", "hour"]


@dataclass(frozen=True)
class City:
    """The synthetic world: routes, users and their walk history."""

    routes: pd.DataFrame  # route_id, lat, lon, length_km, shade, scenic, hills
    users: pd.DataFrame  # user_id, home_lat, home_lon, pref_km, scenic_taste
    history: pd.DataFrame  # user_id, route_id + the context of each walk


def make_city(seed: int = 11) -> City:
    """Routes, users and a history of walks chosen by the hidden utility."""
    rng = np.random.default_rng(seed)
    routes = pd.DataFrame(
        {
            "route_id": np.arange(ROUTES),
            "lat": CENTER[0] + rng.normal(0, 0.02, ROUTES),
            "lon": CENTER[1] + rng.normal(0, 0.03, ROUTES),
            "length_km": rng.uniform(1.0, 12.0, ROUTES).round(1),
            "shade": rng.uniform(0, 1, ROUTES).round(2),
            "scenic": rng.uniform(0, 1, ROUTES).round(2),
            "hills": rng.uniform(0, 1, ROUTES).round(2),
        }
    )
    users = pd.DataFrame(
        {
            "user_id": np.arange(USERS),
            "home_lat": CENTER[0] + rng.normal(0, 0.02, USERS),
            "home_lon": CENTER[1] + rng.normal(0, 0.03, USERS),
            "pref_km": rng.uniform(2.0, 10.0, USERS).round(1),
            "scenic_taste": rng.uniform(0, 2, USERS).round(2),
        }
    )
    walks = []
    for user in users.itertuples():
        contexts = random_contexts(rng, SESSIONS, user.user_id, (user.home_lat, user.home_lon))
        for context in contexts.itertuples():
            utility = _hidden_utility(routes, user, context)
            chosen = rng.choice(ROUTES, p=_softmax(utility * 2.0))
            walks.append({**context._asdict(), "route_id": int(chosen)})
    history = pd.DataFrame(walks).drop(columns="Index")
    return City(routes, users, history)


def random_contexts(rng: np.random.Generator, n: int, user_id: int, home: tuple[float, float]) -> pd.DataFrame:
    """``n`` contexts of one user: a location near home, the weather, the hour."""
    return pd.DataFrame(
        {
            "user_id": np.full(n, user_id, dtype=np.int64),
            "lat": home[0] + rng.normal(0, 0.005, n),
            "lon": home[1] + rng.normal(0, 0.007, n),
            "temp_c": rng.uniform(-2, 34, n).round(1),
            "rain_mm": np.where(rng.uniform(0, 1, n) < 0.3, rng.uniform(0.5, 8, n), 0.0).round(1),
            "hour": rng.integers(6, 22, n).astype(np.int64),
        }
    )


def _hidden_utility(routes: pd.DataFrame, user: Any, context: Any) -> np.ndarray[Any, Any]:
    lat, lon, length, shade, scenic, hills = (
        routes[c].to_numpy() for c in ("lat", "lon", "length_km", "shade", "scenic", "hills")
    )
    hot = max(0.0, context.temp_c - 24) / 10
    wet = context.rain_mm / 5
    return np.asarray(
        -0.9 * _km(context.lat, context.lon, lat, lon)
        - 0.35 * np.abs(length - user.pref_km)
        + 2.5 * hot * shade
        - wet * (1.5 * hills + 0.2 * length)
        + user.scenic_taste * scenic
    )


def _softmax(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    shifted = np.exp(values - values.max())
    return np.asarray(shifted / shifted.sum())


def _km(lat: Any, lon: Any, lat2: Any, lon2: Any) -> Any:
    """Equirectangular distance in km: exact enough across a city."""
    x = (np.asarray(lon2) - lon) * np.cos(np.radians(CENTER[0])) * 111.32
    y = (np.asarray(lat2) - lat) * 110.57
    return np.sqrt(x * x + y * y)


def user_profiles(city: City) -> pd.DataFrame:
    """What each user's history says: walks, mean length, shade and scenery of the routes walked."""
    walked = city.history.merge(city.routes, on="route_id", suffixes=("", "_route"))
    profile = walked.groupby("user_id").agg(
        walks=("route_id", "size"),
        mean_km=("length_km", "mean"),
        mean_scenic=("scenic", "mean"),
        mean_hills=("hills", "mean"),
    )
    return profile.reindex(city.users["user_id"]).rename_axis("user_id")


FEATURES = [
    "distance_km",
    "length_km",
    "shade",
    "scenic",
    "hills",
    "temp_c",
    "rain_mm",
    "hour",
    "km_gap",
    "user_scenic",
    "user_hills",
    "times_walked",
]


def pair_features(
    contexts: pd.DataFrame, routes: pd.DataFrame, profiles: pd.DataFrame, counts: pd.Series[Any]
) -> np.ndarray[Any, Any]:
    """One row of :data:`FEATURES` per (context, route), contexts outer, routes inner."""
    n, r = len(contexts), len(routes)
    known = profiles.dropna()
    default = known.mean()  # a user with no history gets the average user
    users = contexts["user_id"].to_numpy()
    profile = profiles.reindex(users).fillna(default)
    lat = contexts["lat"].to_numpy()[:, None]
    lon = contexts["lon"].to_numpy()[:, None]
    route_ids = routes["route_id"].to_numpy()
    pairs = pd.MultiIndex.from_arrays([np.repeat(users, r), np.tile(route_ids, n)])
    times = counts.reindex(pairs, fill_value=0).to_numpy().reshape(n, r)

    def per_route(column: str) -> np.ndarray[Any, Any]:
        return np.broadcast_to(routes[column].to_numpy()[None, :], (n, r))

    def per_context(values: Any) -> np.ndarray[Any, Any]:
        return np.broadcast_to(np.asarray(values, dtype=float)[:, None], (n, r))

    columns = [
        _km(lat, lon, routes["lat"].to_numpy()[None, :], routes["lon"].to_numpy()[None, :]),
        per_route("length_km"),
        per_route("shade"),
        per_route("scenic"),
        per_route("hills"),
        per_context(contexts["temp_c"]),
        per_context(contexts["rain_mm"]),
        per_context(contexts["hour"]),
        np.abs(per_route("length_km") - per_context(profile["mean_km"])),
        per_context(profile["mean_scenic"]) * per_route("scenic"),
        per_context(profile["mean_hills"]) * per_route("hills"),
        times,
    ]
    return np.stack([np.asarray(c, dtype=float).reshape(-1) for c in columns], axis=1)


class RouteRanker:
    """The deployed model: a context row in, the user's top 10 route ids out (``rank_1`` ... ``rank_10``)."""

    def __init__(self, scorer: Any, routes: pd.DataFrame, profiles: pd.DataFrame, counts: pd.Series[Any]) -> None:
        self.scorer = scorer
        self.routes = routes.reset_index(drop=True)
        self.profiles = profiles
        self.counts = counts

    def predict(self, contexts: pd.DataFrame) -> pd.DataFrame:
        """The top 10 routes of each context, best first; ties go to the lower route id."""
        frame = pd.DataFrame(contexts)[CONTEXT].reset_index(drop=True)
        n, r = len(frame), len(self.routes)
        scores = self.scorer.decision_function(pair_features(frame, self.routes, self.profiles, self.counts))
        ids = np.broadcast_to(self.routes["route_id"].to_numpy()[None, :], (n, r))
        order = np.lexsort((ids, -scores.reshape(n, r)), axis=1)[:, :TOP]
        top = np.take_along_axis(ids, order, axis=1).astype(np.int64)
        return pd.DataFrame({f"rank_{i + 1}": top[:, i] for i in range(TOP)})


def train(city: City, seed: int = 3) -> tuple[RouteRanker, float]:
    """Fit the pair scorer on walked routes against sampled alternatives; returns the ranker and its hit@10."""
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(seed)
    history = city.history.reset_index(drop=True)
    profiles = user_profiles(city)
    counts = history.groupby(["user_id", "route_id"]).size()
    features = pair_features(history[CONTEXT], city.routes, profiles, counts)
    walked = np.zeros((len(history), ROUTES), dtype=bool)
    walked[np.arange(len(history)), history["route_id"].to_numpy()] = True
    # every walk, and five routes not walked that time
    keep = walked | (rng.uniform(0, 1, walked.shape) < 5 / ROUTES)
    # single-threaded trees: the same speed on a busy machine as on an idle one
    scorer = GradientBoostingClassifier(n_estimators=80, max_depth=3, random_state=seed)
    scorer.fit(features[keep.reshape(-1)], walked.reshape(-1)[keep.reshape(-1)])
    ranker = RouteRanker(scorer, city.routes, profiles, counts)
    fresh = np.random.default_rng(seed + 1)
    held_out = [random_contexts(fresh, 4, int(u.user_id), (u.home_lat, u.home_lon)) for u in city.users.itertuples()]
    contexts = pd.concat(held_out, ignore_index=True)
    hits = 0
    for context, top in zip(contexts.itertuples(), ranker.predict(contexts).to_numpy(), strict=True):
        user = city.users.iloc[int(context.user_id)]
        best = int(np.argmax(_hidden_utility(city.routes, user, context)))
        hits += int(best in top)
    return ranker, hits / len(contexts)
