// Decoders never throw on bad input: they return a typed error whose `reason` is a stable,
// low-cardinality string, so the receive path can count drops per reason in metrics.

export type Result<T, E = DecodeError> = { ok: true; value: T } | { ok: false; error: E };

export class DecodeError {
  constructor(
    readonly reason: string,
    readonly detail = "",
  ) {}
  toString(): string {
    return this.detail ? `${this.reason}: ${this.detail}` : this.reason;
  }
}

export function ok<T>(value: T): Result<T, never> {
  return { ok: true, value };
}

export function fail(reason: string, detail = ""): { ok: false; error: DecodeError } {
  return { ok: false, error: new DecodeError(reason, detail) };
}
