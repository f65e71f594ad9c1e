/**
 * One error catalogue: every error code the API can answer, with its HTTP status. Routes map expected
 * outcomes to these codes; the global error handler renders `{ "error": { "code", "message" } }`.
 */
export const errorStatus = {
  bad_request: 400,
  invalid_json: 400,
  validation_failed: 400,
  weak_password: 400,
  invalid_token: 400,
  token_expired: 400,
  invalid_state: 400,
  no_verified_email: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  forbidden: 403,
  plan_limit_reached: 403,
  email_not_verified: 403,
  csrf_failed: 403,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  conflict: 409,
  email_taken: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  quota_exceeded: 429,
  too_many_attempts: 429,
  headers_too_large: 431,
  internal_error: 500,
  oauth_failed: 502,
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export class AppError extends Error {
  override name = "AppError";
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.status = errorStatus[code];
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}
