export * from "./enums.js";
export * from "./error-codes.js";
export * from "./close-codes.js";
export * from "./gateway-error.js";
export * from "./frames.js";
export * from "./schema.js";
