// Secrets the client presented in `connect.params.auth`. Neither claims nor
// evidence: they become evidence only when a credential module verifies them.
export interface PresentedSecrets {
  readonly token?: string | undefined;
  readonly password?: string | undefined;
  readonly deviceToken?: string | undefined;
  readonly bootstrapToken?: string | undefined;
}

export function nonBlank(value: string | undefined): string | undefined {
  return value !== undefined && value.trim().length > 0 ? value : undefined;
}

/** True when the client supplied any secret at all (failures then count toward lockout). */
export function presentedAny(p: PresentedSecrets): boolean {
  return [p.token, p.password, p.deviceToken, p.bootstrapToken].some((v) => nonBlank(v) !== undefined);
}
