"""A forgotten shopper's copies in the cache, dropped (privacy.forget erases the database's rows).

Everything cached about a shopper is keyed by their version token, so renewing it leaves nothing
servable; the copies themselves are deleted too: the history read under the old token, the
shortlists of every placement as pages ask for them by default (the precomputed ones), the clicks
remembered for attribution, the experiment arms remembered. Their promotion groups and showings are erased here too (the
receiver runs once the erasure committed). Shortlists of other asks (a product page's, a limit asked for) are never
served again and expire within ranking.CACHE_SECONDS."""
from personalization import state
from personalization.cache import cache
from personalization.models import Experiment
from personalization.promotions import showing as promotions
from personalization.serving import ranking


def forget_cached(sender=None, *, user_id="", session_key="", version=None, **kwargs):
    """shopper_forgotten's receiver; `version`: the shopper's version token when they were forgotten."""
    shopper = state.Shopper(user_id=user_id or None, session_key="" if user_id else session_key)
    if not shopper:
        return
    keys = [state.clicks_key(shopper.user_id, shopper.session_key), *ranking.precomputed_keys(shopper)]
    tokens = {version, state.cached_version(shopper)} - {None}
    keys += [state.history_key(shopper, token) for token in tokens]
    keys += [state.arm_key(pk, shopper) for pk in Experiment.objects.values_list("pk", flat=True)]
    cache.delete_many(keys)
    promotions.forget(user_id=shopper.user_id or "", session_key=shopper.session_key)
    state.renew_versions([(shopper.user_id, shopper.session_key)])
