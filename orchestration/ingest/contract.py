"""The raw CRM contract: which tables exist, their columns, types and keys.

This module is the single definition of the contract.  The loader, the GX suites,
the source adapters and the README table are all derived from (or checked against) it.
It is plain Python with no Dagster import, so ``ml``/``expectations``/tests can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # DuckDB type the raw table gets: VARCHAR, DATE, TIMESTAMP, DOUBLE, BIGINT
    required: bool = False
    description: str = ""
    allowed: tuple[str, ...] = ()  # allowed values for small enumerations (empty = any)
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True)
class Table:
    name: str
    primary_key: str
    columns: tuple[Column, ...]
    description: str
    # the column that dates an event (used for future-date checks and the default as-of date)
    event_date: str | None = None
    references_customer: bool = True
    date_columns: tuple[str, ...] = field(default=())

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


CUSTOMERS = Table(
    name="customers",
    primary_key="customer_id",
    description="One row per customer (latest version wins by updated_at, then load order).",
    references_customer=False,
    event_date="signup_date",
    columns=(
        Column("customer_id", "VARCHAR", True, "Customer key."),
        Column("signup_date", "DATE", False, "Date the customer signed up."),
        Column("country", "VARCHAR", False, "Country (segment dimension)."),
        Column("gender", "VARCHAR", False, "Gender (segment dimension)."),
        Column("birth_year", "BIGINT", False, "Year of birth.", min_value=1900, max_value=2030),
        Column("acquisition_channel", "VARCHAR", False, "Channel that acquired the customer."),
        Column("customer_type", "VARCHAR", False, "e.g. consumer / business."),
        Column("updated_at", "TIMESTAMP", False, "When this version of the record was written."),
    ),
    date_columns=("signup_date", "updated_at"),
)

SUBSCRIPTIONS = Table(
    name="subscriptions",
    primary_key="subscription_id",
    description="Contracts. end_date is exclusive: the first day without service; empty = open.",
    event_date="start_date",
    columns=(
        Column("subscription_id", "VARCHAR", True, "Subscription key."),
        Column("customer_id", "VARCHAR", True, "Customer key."),
        Column("plan", "VARCHAR", False, "Plan or contract type."),
        Column("start_date", "DATE", True, "First day of service."),
        Column("end_date", "DATE", False, "First day without service (exclusive); empty = open."),
        Column("mrr", "DOUBLE", True, "Monthly recurring revenue while active.", min_value=0),
    ),
    date_columns=("start_date", "end_date"),
)

ORDERS = Table(
    name="orders",
    primary_key="order_id",
    description="Purchase history.",
    event_date="order_date",
    columns=(
        Column("order_id", "VARCHAR", True, "Order key."),
        Column("customer_id", "VARCHAR", True, "Customer key."),
        Column("order_date", "DATE", True, "Date of the order."),
        Column("amount", "DOUBLE", True, "Order value.", min_value=0),
        Column("status", "VARCHAR", False, "completed / refunded / cancelled (empty = completed).",
               allowed=("completed", "refunded", "cancelled")),
    ),
    date_columns=("order_date",),
)

INTERACTIONS = Table(
    name="interactions",
    primary_key="interaction_id",
    description="Engagement events (logins, opens, visits ...).",
    event_date="occurred_at",
    columns=(
        Column("interaction_id", "VARCHAR", True, "Interaction key."),
        Column("customer_id", "VARCHAR", True, "Customer key."),
        Column("occurred_at", "TIMESTAMP", True, "When it happened."),
        Column("channel", "VARCHAR", False, "web / app / email ..."),
        Column("interaction_type", "VARCHAR", False, "login / open / click ..."),
    ),
    date_columns=("occurred_at",),
)

SUPPORT_TICKETS = Table(
    name="support_tickets",
    primary_key="ticket_id",
    description="Service issues.",
    event_date="opened_at",
    columns=(
        Column("ticket_id", "VARCHAR", True, "Ticket key."),
        Column("customer_id", "VARCHAR", True, "Customer key."),
        Column("opened_at", "TIMESTAMP", True, "When the ticket was opened."),
        Column("resolved_at", "TIMESTAMP", False, "When it was resolved; empty = open."),
        Column("priority", "VARCHAR", False, "low / medium / high / urgent"),
        Column("category", "VARCHAR", False, "billing / technical / ..."),
        Column("satisfaction_score", "DOUBLE", False, "CSAT 1-5.", min_value=1, max_value=5),
    ),
    date_columns=("opened_at", "resolved_at"),
)

LOYALTY_EVENTS = Table(
    name="loyalty_events",
    primary_key="event_id",
    description="Loyalty programme events.",
    event_date="occurred_at",
    columns=(
        Column("event_id", "VARCHAR", True, "Event key."),
        Column("customer_id", "VARCHAR", True, "Customer key."),
        Column("occurred_at", "TIMESTAMP", True, "When it happened."),
        Column("event_type", "VARCHAR", False, "enroll / earn / redeem / tier_change / leave",
               allowed=("enroll", "earn", "redeem", "tier_change", "leave")),
        Column("points", "DOUBLE", False, "Points earned (+) or redeemed (-)."),
        Column("tier", "VARCHAR", False, "Tier after the event."),
    ),
    date_columns=("occurred_at",),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (CUSTOMERS, SUBSCRIPTIONS, ORDERS, INTERACTIONS, SUPPORT_TICKETS, LOYALTY_EVENTS)
}

# customers plus at least one of these is required; everything else is optional.
ACTIVITY_TABLES: tuple[str, ...] = ("subscriptions", "orders")
REQUIRED_TABLES: tuple[str, ...] = ("customers",)
# Lineage columns the loader adds to every raw table.
LINEAGE_COLUMNS: tuple[str, ...] = ("_source_file", "_row_number", "_loaded_at")
