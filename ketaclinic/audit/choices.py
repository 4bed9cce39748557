"""What an audit event records (security.md R7: reads, writes, exports, logins, privileges)."""

from django.db import models


class Action(models.TextChoices):
    READ = "read", "Read"
    LIST = "list", "List / search"
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    EXPORT = "export", "Export"
    PRINT = "print", "Print"
    LOGIN = "login", "Login"
    LOGOUT = "logout", "Logout"
    LOGIN_FAILED = "login_failed", "Failed login"
    LOCKOUT = "lockout", "Lockout"
    IDLE_TIMEOUT = "idle_timeout", "Idle timeout"
    MFA_ENROL = "mfa_enrol", "MFA enrolled"
    MFA_REMOVE = "mfa_remove", "MFA removed"
    MFA_FAILED = "mfa_failed", "MFA code rejected"
    MEMBERSHIP_CHANGE = "membership_change", "Role / membership change"
    TOKEN_CREATE = "token_create", "API token created"
    TOKEN_REVOKE = "token_revoke", "API token revoked"
    SYSTEM = "system", "System"
