import type { Insertable, Selectable } from "kysely";

/**
 * Table types shared by the SQLite and PostgreSQL adapters. Portable choices: timestamps are integer
 * milliseconds since the epoch (BIGINT), booleans are 0/1 integers, JSON is text, bodies are bytes.
 */
export interface Database {
  users: UsersTable;
  api_keys: ApiKeysTable;
  endpoints: EndpointsTable;
  webhook_logs: WebhookLogsTable;
  delivery_attempts: DeliveryAttemptsTable;
  usage_counters: UsageCountersTable;
  sessions: SessionsTable;
  one_time_tokens: OneTimeTokensTable;
  oauth_accounts: OauthAccountsTable;
  mail_outbox: MailOutboxTable;
  oauth_states: OauthStatesTable;
  notifications: NotificationsTable;
  notification_preferences: NotificationPreferencesTable;
  endpoint_stats: EndpointStatsTable;
}

export type NotificationType = "ANOMALY_DETECTED" | "ENDPOINT_DOWN" | "QUOTA_WARNING" | "TRIAL_ENDING";

export interface NotificationsTable {
  id: string;
  user_id: string;
  type: NotificationType;
  title: string;
  message: string;
  endpoint_id: string | null;
  endpoint_slug: string | null;
  dedupe_key: string | null;
  read_at: number | null;
  created_at: number;
}

export interface NotificationPreferencesTable {
  user_id: string;
  email_enabled: number;
  webhook_enabled: number;
  webhook_url: string | null;
  updated_at: number;
}

export interface EndpointStatsTable {
  endpoint_id: string;
  granularity: "hour" | "day";
  bucket_start: number;
  user_id: string;
  requests: number;
  successes: number;
  failures: number;
  latency_sum_ms: number;
  lat_0: number;
  lat_1: number;
  lat_2: number;
  lat_3: number;
  lat_4: number;
  lat_5: number;
  lat_6: number;
  lat_7: number;
  lat_8: number;
  lat_9: number;
  lat_10: number;
  lat_11: number;
}

export interface OauthStatesTable {
  state_hash: string;
  provider: string;
  code_verifier: string;
  created_at: number;
  expires_at: number;
}

export type Plan = "free" | "pro";

export interface UsersTable {
  id: string;
  email: string;
  name: string | null;
  plan: Plan;
  trial_ends_at: number | null;
  created_at: number;
  updated_at: number;
  /** argon2id; null for OAuth-only accounts. */
  password_hash: string | null;
  email_verified_at: number | null;
  avatar_url: string | null;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  /** SHA-256 of the cookie's token; the token itself is never stored. */
  token_hash: string;
  created_at: number;
  expires_at: number;
  last_seen_at: number;
}

export type OneTimePurpose = "verify_email" | "password_reset";

export interface OneTimeTokensTable {
  id: string;
  user_id: string;
  purpose: OneTimePurpose;
  token_hash: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export interface OauthAccountsTable {
  provider: string;
  provider_user_id: string;
  user_id: string;
  created_at: number;
}

/** Mail kept when no mail provider is configured, so a self-hoster can still follow sign-up links. */
export interface MailOutboxTable {
  id: string;
  to_address: string;
  subject: string;
  text_body: string;
  /** JSON array of the links in the mail. */
  links: string;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  user_id: string;
  name: string;
  key_hash: string;
  /** Last 8 characters of the key, to recognise it in a list. */
  hint: string;
  created_at: number;
  last_used_at: number | null;
}

export interface EndpointsTable {
  id: string;
  user_id: string;
  name: string;
  slug: string;
  target_url: string;
  /** AES-256-GCM sealed `whsec_…`; null when the endpoint signs nothing. */
  signing_secret_sealed: string | null;
  is_paused: number;
  created_at: number;
  updated_at: number;
}

export type LogStatus = "queued" | "delivering" | "retrying" | "delivered" | "failed";

export interface WebhookLogsTable {
  id: string;
  user_id: string;
  endpoint_id: string;
  method: string;
  /** Query string as received, including the leading `?`, or "". */
  query: string;
  request_headers: string;
  request_body: Buffer;
  request_size: number;
  source: string | null;
  is_test: number;
  status: LogStatus;
  attempt_count: number;
  max_attempts: number;
  /**
   * When the next attempt is due; set exactly while the log is queued, retrying or delivering (the
   * embedded queue claims logs by it), null once delivered or failed.
   */
  next_attempt_at: number | null;
  response_status: number | null;
  error_kind: string | null;
  error_message: string | null;
  duration_ms: number | null;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
}

export interface DeliveryAttemptsTable {
  id: string;
  log_id: string;
  attempt: number;
  started_at: number;
  duration_ms: number;
  target_url: string;
  request_headers: string;
  outcome: "success" | "failure";
  response_status: number | null;
  response_headers: string | null;
  response_body: Buffer | null;
  response_truncated: number;
  error_kind: string | null;
  error_message: string | null;
}

export interface UsageCountersTable {
  user_id: string;
  /** Calendar month in UTC, `YYYY-MM`. */
  period: string;
  request_count: number;
}

export type UserRow = Selectable<UsersTable>;
export type EndpointRow = Selectable<EndpointsTable>;
export type WebhookLogRow = Selectable<WebhookLogsTable>;
/** What a delivery attempt reads of its log (the embedded queue reads it with the claim). */
export const DELIVERY_LOG_COLUMNS = [
  "id",
  "user_id",
  "endpoint_id",
  "method",
  "query",
  "request_headers",
  "request_body",
  "is_test",
  "status",
  "attempt_count",
  "max_attempts",
] as const satisfies readonly (keyof WebhookLogRow)[];
export type DeliveryLogRow = Pick<WebhookLogRow, (typeof DELIVERY_LOG_COLUMNS)[number]>;
export type NewWebhookLog = Insertable<WebhookLogsTable>;
export type DeliveryAttemptRow = Selectable<DeliveryAttemptsTable>;
