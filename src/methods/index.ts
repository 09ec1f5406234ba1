export { defineMethod, MethodRegistry } from "./registry.js";
export { authorize, requirementOf, type Requirement } from "./authorize.js";
export type { CallerSession, MethodServices, MethodDefinition, RegisteredMethod, PresenceEntry, GatewayIdentity } from "./define-method.js";
export { DEVICE_METHODS } from "./device-methods.js";
export { SYSTEM_METHODS } from "./system-methods.js";
export { HOST_METHODS } from "./host-methods.js";
export { pairedToWire, pendingToWire } from "./wire-records.js";
