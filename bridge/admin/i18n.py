"""The admin page's words, in French first and in English.

The language is the one the operator chose with the switch (kept in the session), else the first
of French or English in the browser's ``Accept-Language``, else French.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("fr", "en")
DEFAULT = "fr"

# key: (French, English)
_WORDS: dict[str, tuple[str, str]] = {
    "title": ("Administration du pont de facturation", "Invoicing bridge administration"),
    "dashboard": ("Tableau de bord", "Dashboard"),
    "events": ("Webhooks reçus", "Received webhooks"),
    "commands": ("Commandes vers Facturation.pro", "Commands to Facturation.pro"),
    "login": ("Connexion", "Log in"),
    "login_help": (
        "Collez le jeton d'administration (BRIDGE_ADMIN_TOKEN).",
        "Paste the admin token (BRIDGE_ADMIN_TOKEN).",
    ),
    "token": ("Jeton", "Token"),
    "login_failed": ("Jeton incorrect.", "Wrong token."),
    "logout": ("Se déconnecter", "Log out"),
    "logged_out": ("Vous êtes déconnecté.", "You are logged out."),
    "csrf_refused": (
        "Requête refusée : jeton de formulaire (CSRF) absent ou invalide. Rechargez la page.",
        "Request refused: the form's (CSRF) token is missing or invalid. Reload the page.",
    ),
    "bad_form": ("Formulaire illisible.", "Unreadable form."),
    "not_found": ("Introuvable.", "Not found."),
    "search": ("Rechercher", "Search"),
    "search_help": (
        "n° de commande, id Stripe, n° de facture, clé…",
        "order number, Stripe id, invoice number, key…",
    ),
    "state": ("État", "State"),
    "all_states": ("tous les états", "every state"),
    "filter": ("Filtrer", "Filter"),
    "no_rows": ("Aucun résultat.", "No results."),
    "shown": ("{n} affiché(s), les plus récents d'abord", "{n} shown, newest first"),
    "replay": ("Rejouer", "Replay"),
    "replay_all": ("Rejouer tous ceux du filtre", "Replay all matching the filter"),
    "retry": ("Relancer", "Retry"),
    "retry_all": (
        "Relancer toutes les mortes du filtre",
        "Retry every dead one matching the filter",
    ),
    "bulk_needs_filter": (
        "Choisissez un état ou une recherche avant d'agir sur tout le filtre.",
        "Choose a state or a search before acting on the whole filter.",
    ),
    "replayed": ("{n} événement(s) rejoué(s).", "{n} event(s) replayed."),
    "not_replayed": (
        "Événement {id} déjà en attente de traitement.",
        "Event {id} is already waiting to be processed.",
    ),
    "retried": ("{n} commande(s) relancée(s).", "{n} command(s) retried."),
    "not_retried": (
        "La commande {id} n'est pas morte : rien à relancer.",
        "Command {id} is not dead: nothing to retry.",
    ),
    "delivery": ("Envoi vers Facturation.pro", "Delivery to Facturation.pro"),
    "running": ("en marche", "running"),
    "paused": ("en pause", "paused"),
    "pause": ("Mettre en pause", "Pause"),
    "resume": ("Reprendre", "Resume"),
    "reason": ("Raison", "Reason"),
    "default_pause_reason": (
        "mis en pause depuis la page d'administration",
        "paused from the admin page",
    ),
    "paused_done": ("Envoi mis en pause.", "Delivery paused."),
    "resumed_done": ("Envoi repris.", "Delivery resumed."),
    "since": ("depuis", "since"),
    "by": ("par", "by"),
    "quota": ("Quota de l'API", "API quota"),
    "in_window": ("requêtes dans la fenêtre", "requests in the window"),
    "in_day": ("requêtes sur 24 h", "requests in 24 h"),
    "blocked_until": ("bloqué jusqu'à", "blocked until"),
    "backlog": ("Retard", "Backlog"),
    "oldest_pending": ("plus ancienne commande en attente", "oldest pending command"),
    "seconds": ("s", "s"),
    "none": ("aucune", "none"),
    "blocked": (
        "commandes bloquées par une dépendance morte",
        "commands blocked by a dead dependency",
    ),
    "reconcile": ("Dernier rapprochement", "Last reconcile"),
    "none_yet": ("aucun pour l'instant", "none yet"),
    "id": ("n°", "id"),
    "source": ("Source", "Source"),
    "event_id": ("Id de l'événement", "Event id"),
    "type": ("Type", "Type"),
    "received_at": ("Reçu le", "Received at"),
    "processed_at": ("Traité le", "Processed at"),
    "next_attempt_at": ("Prochain essai", "Next attempt"),
    "attempts": ("Essais", "Attempts"),
    "error": ("Erreur", "Error"),
    "key": ("Clé", "Key"),
    "kind": ("Nature", "Kind"),
    "remote_id": ("Id Facturation.pro", "Facturation.pro id"),
    "outcome_unknown": (
        "issue inconnue (sera vérifiée avant tout renvoi)",
        "outcome unknown (looked up before any re-send)",
    ),
    "created_at": ("Créée le", "Created at"),
    "first_attempt_at": ("Premier essai", "First attempt"),
    "done_at": ("Terminée le", "Done at"),
    "payload": ("Contenu envoyé", "Payload"),
    "meta": ("Métadonnées", "Metadata"),
    "result": ("Résultat / réponse de l'API", "Result / API answer"),
    "dependencies": ("Dépendances", "Dependencies"),
    "raw_body": ("Contenu brut reçu", "Raw body received"),
    "headers": ("En-têtes", "Headers"),
    "event": ("Événement", "Event"),
    "command": ("Commande", "Command"),
    "produced": ("Commandes produites", "Commands produced"),
    "language": ("Langue", "Language"),
    # states
    "received": ("reçu", "received"),
    "mapped": ("traduit", "mapped"),
    "ignored": ("ignoré", "ignored"),
    "failed": ("en échec", "failed"),
    "pending": ("en attente", "pending"),
    "in_flight": ("en cours", "in flight"),
    "done": ("faite", "done"),
    "dead": ("morte", "dead"),
    "cancelled": ("annulée", "cancelled"),
    "missing": ("absente", "missing"),
}


def negotiate(accept_language: str) -> str:
    """The first of our languages in an ``Accept-Language`` header, by its q-value; else French."""
    best, best_q = DEFAULT, -1.0
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower()[:2]
        if lang not in LANGUAGES:
            continue
        q = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
        q -= position * 1e-6  # equal weights: the first listed wins
        if q > best_q:
            best, best_q = lang, q
    return best if best_q > 0 else DEFAULT


def translator(lang: str) -> Callable[..., str]:
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str, **params: object) -> str:
        words = _WORDS.get(key)
        text = words[index] if words else key
        return text.format(**params) if params else text

    return t
