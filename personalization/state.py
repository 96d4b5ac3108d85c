"""One shopper's state in the cache: who they are, every cache key kept about them, read at once.

What the plugin caches per shopper, and the keys of it, live here and nowhere else:

    version token   renewed by each of their views, cart changes and purchases (events) and by
                    opting out (privacy); whatever is cached about them is keyed by it
    opt-out         their privacy choice, cached briefly (the database holds it: OptOut)
    history         their ShopperHistory under a version token (serving.shoppers computes it)
    slots           a shortlist per placement and ask (serving.shortlists computes it)
    clicks          the recommendations they clicked lately, for crediting their next cart additions (attribution)
    views           that they viewed a product a moment ago, so that a repeated view counts once (events)
    arms            their arm in each running experiment (experiments.arms; the database keeps it too)

with what serving reads alongside: the active model versions (under the registry's keys), a
placement and its running experiment, and the catalog token (renewed whenever a product changes: the
products' facts a process remembers are kept under it, personalization.serving.catalog). `read()`
fetches what a request needs in one `cache.get_many` into a ShopperState, where anything the cache
did not hold is None.

It sits beside capture (events and privacy use it) and imports neither, nor any service.
"""
import hashlib
import uuid
from dataclasses import dataclass, field

from personalization import registry
from personalization.cache import cache
from personalization.models import Experiment, OptOut, Placement

#: How long a shopper's version token lives; what is cached under it lives shorter.
VERSION_SECONDS = 24 * 60 * 60
#: How long a shopper's opt-out answer is cached.
OPT_OUT_SECONDS = 300


@dataclass
class Shopper:
    """Who did it: a signed-in user, or an anonymous session."""

    user_id: object = None
    session_key: str = ""

    def __bool__(self):
        return bool(self.user_id or self.session_key)


NOBODY = Shopper()


def shopper_from(request_or_user, *, create_session=True):
    """The Shopper behind a request or a user: the signed-in user, else the request's session. A
    request without a session key gets one stored when `create_session`, else is nobody (a new shopper)."""
    user = getattr(request_or_user, "user", request_or_user)
    if getattr(user, "is_authenticated", False):
        return Shopper(user_id=user.pk)
    session = getattr(request_or_user, "session", None)
    if session is None:
        return Shopper()
    if not session.session_key:
        if not create_session:
            return Shopper()
        session.save()
    return Shopper(session_key=session.session_key)


# The keys ------------------------------------------------------------------------------------


def version_key(shopper):
    return _owner_key("shopper-version", shopper.user_id, shopper.session_key)


def opt_out_key(user_id=None, session_key=""):
    return _owner_key("optout", user_id, session_key)


def history_key(shopper, version):
    """Where the history of `shopper` read under their version token `version` is cached."""
    return f"personalization:history:{shopper.user_id or ''}:{shopper.session_key}:{version}"


def slot_key(slug, shopper, limit, product_id, cart_product_ids):
    """Where the shortlist of one placement, shopper and ask is kept (known before the placement is
    read: the slug and the limit as asked for, None for the placement's). One slot per ask."""
    who = f"{shopper.user_id or ''}:{shopper.session_key}" if shopper else "nobody"
    cart_part = "-" if cart_product_ids is None else sorted(str(p) for p in cart_product_ids)
    limit_part = "" if limit is None else str(limit)
    product_part = "" if product_id in (None, "") else str(product_id)
    return "personalization:recs:" + digest([slug, limit_part, who, product_part, cart_part])


def clicks_key(user_id, session_key):
    """Where the shopper's recent clicks are remembered (attribution)."""
    return _owner_key("clicks", user_id, session_key)


def view_key(shopper, product_id):
    """Marks a view of `product_id` by `shopper` within VIEW_DEDUPE_SECONDS (events)."""
    return f"personalization:view:{shopper.user_id or ''}:{shopper.session_key}:{product_id}"


def arm_key(experiment_id, shopper):
    """Where the shopper's arm in the experiment `experiment_id` is remembered (experiments.arms)."""
    return _owner_key(f"experiment-arm:{experiment_id}", shopper.user_id, shopper.session_key)


def catalog_key():
    """Where the catalog token lives: renewed when a product (or a model its facts are read through) changes."""
    return "personalization:catalog-version"


def digest(parts):
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def _owner_key(what, user_id, session_key):
    return f"personalization:{what}:u{user_id}" if user_id else f"personalization:{what}:s{session_key}"


# One read ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopperState:
    """What the cache held for one shopper (and a placement) at one read. None: not cached."""

    shopper: Shopper
    version: str | None = None  # their version token
    opted_out: bool | None = None  # their cached opt-out answer
    models: dict = field(default_factory=dict)  # {kind: the active version id, or None}
    slot_key: str | None = None
    slot: object = None  # what the slot held
    placement_slug: str | None = None  # the placement read with the state, if any
    placement: Placement | None = None
    experiment: object = None  # the placement's cached running experiment (experiments.arms)
    catalog: str | None = None  # the catalog token

    def is_opted_out(self):
        """Whether the shopper opted out: the cached answer, else the database's (then cached)."""
        if not self.shopper:
            return False
        if self.opted_out is not None:
            return self.opted_out
        return _opt_out_from_database(self.shopper.user_id, self.shopper.session_key)

    def version_token(self):
        """(token, new): the shopper's version token, created now when they had none (`new`: so
        nothing can be cached under it yet); ("", False) for nobody."""
        if not self.shopper:
            return "", False
        if self.version is not None:
            return self.version, False
        return _new_version(self.shopper)


def read(shopper, *, models=(), slot=None, placement_slug=None):
    """The ShopperState of `shopper`: their version token and opt-out answer, the active versions of
    `models`, what the slot `slot` holds and, with `placement_slug`, the cached placement and its
    experiment, in one cache round trip (the active version ids the cache lacks come from the database)."""
    keys = {registry.active_key(kind): kind for kind in models}
    if shopper:
        keys.update({version_key(shopper): "version", opt_out_key(shopper.user_id, shopper.session_key): "opted_out"})
    if placement_slug is not None:
        keys[Placement.cache_key(placement_slug)] = "placement"
        keys[Experiment.cache_key(placement_slug)] = "experiment"
    if slot is not None:
        keys[slot] = "slot"
    keys[catalog_key()] = "catalog"
    found = {keys[key]: value for key, value in cache.get_many(list(keys)).items()}
    return ShopperState(
        shopper=shopper,
        version=found.get("version"),
        opted_out=found.get("opted_out"),
        models=registry.active_ids(models, cached={kind: found.get(kind) for kind in models}),
        slot_key=slot,
        slot=found.get("slot"),
        placement_slug=placement_slug,
        placement=found.get("placement"),
        experiment=found.get("experiment"),
        catalog=found.get("catalog"),
    )


# The version token -----------------------------------------------------------------------------


def version_token(shopper):
    """(token, new) of `shopper`, as ShopperState.version_token, reading the cache here."""
    if not shopper:
        return "", False
    token = cache.get(version_key(shopper))
    return (token, False) if token is not None else _new_version(shopper)


def cached_version(shopper):
    """The shopper's version token if they have one now, else None (creates nothing)."""
    return cache.get(version_key(shopper)) if shopper else None


def version_tokens(shoppers):
    """[version token] of many shoppers, in order, in two cache round trips: the tokens they have,
    then new ones for the others (precomputing; a request racing it at worst orphans what it cached)."""
    keys = [version_key(shopper) for shopper in shoppers]
    found = cache.get_many(keys)
    new = {key: _token() for key in keys if key not in found}
    if new:
        cache.set_many(new, VERSION_SECONDS)
    return [found.get(key) or new[key] for key in keys]


def renew_versions(owners):
    """Gives each (user_id, session_key) a new version token, in one cache write. The cache never
    raises (personalization.cache)."""
    tokens = {_owner_key("shopper-version", user_id, session_key): _token() for user_id, session_key in owners}
    if tokens:
        cache.set_many(tokens, VERSION_SECONDS)


def _new_version(shopper):
    key, token = version_key(shopper), _token()
    if cache.add(key, token, VERSION_SECONDS):
        return token, True
    return cache.get(key, token), False  # another request created it first


def _token():
    return uuid.uuid4().hex[:12]


# The catalog token ------------------------------------------------------------------------------


def catalog_token(cached):
    """The catalog token: `cached` (as read with the state), else one created now; None when the
    cache cannot keep one (then nothing about products is remembered)."""
    if cached is not None:
        return cached
    token = _token()
    if cache.add(catalog_key(), token, VERSION_SECONDS):
        return token
    return cache.get(catalog_key())


def renew_catalog():
    """A new catalog token: whatever was remembered of products under the old one is read again."""
    cache.set(catalog_key(), _token(), VERSION_SECONDS)


# The opt-out answer ----------------------------------------------------------------------------


def is_opted_out(user_id=None, session_key=""):
    """True when this shopper asked not to be tracked or personalized (the answer cached briefly)."""
    if not user_id and not session_key:
        return False
    answer = cache.get(opt_out_key(user_id, session_key))
    return answer if answer is not None else _opt_out_from_database(user_id, session_key)


def remember_opt_out(user_id, session_key, answer):
    cache.set(opt_out_key(user_id, session_key), answer, OPT_OUT_SECONDS)


def drop_opt_out(user_id, session_key):
    cache.delete(opt_out_key(user_id, session_key))


def _opt_out_from_database(user_id, session_key):
    owner = {"user__pk": user_id} if user_id else {"session_key": session_key}
    try:
        answer = OptOut.objects.filter(**owner).exists()
    except (TypeError, ValueError):  # a shopper key that is not a user primary key has no account
        answer = False
    remember_opt_out(user_id, session_key, answer)
    return answer
