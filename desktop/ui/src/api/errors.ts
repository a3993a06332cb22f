import type { ErrorBody, FieldError } from "../generated/bindings";

/** A command's failure, in the one error shape of DESIGN.md. */
export class ApiError extends Error {
  readonly body: ErrorBody;
  /** The HTTP status, when the error came over HTTP. */
  readonly status?: number;

  constructor(body: ErrorBody, status?: number) {
    super(body.message);
    this.name = "ApiError";
    this.body = body;
    this.status = status;
  }

  get code(): ErrorBody["code"] {
    return this.body.code;
  }

  get fields(): FieldError[] {
    return this.body.fields ?? [];
  }

  static from(e: unknown): ApiError {
    if (e instanceof ApiError) return e;
    if (isErrorBody(e)) return new ApiError({ ...e, fields: e.fields ?? [] });
    return new ApiError({ code: "internal", message: String(e), fields: [] });
  }
}

function isErrorBody(e: unknown): e is ErrorBody {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** A readable one-line message for any thrown value. */
export function messageOf(e: unknown): string {
  return ApiError.from(e).message;
}

/**
 * Field errors whose path starts with `prefix` (e.g. `values.`), keyed by the
 * rest of the path, so a form can show each beside its field.
 */
export function fieldErrorsUnder(errors: FieldError[], prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of errors) {
    if (!e.field.startsWith(prefix)) continue;
    const key = e.field.slice(prefix.length).split(".")[0];
    out[key] = out[key] ? `${out[key]}; ${e.message}` : e.message;
  }
  return out;
}
