/** A free TCP port on 127.0.0.1 (the OS picks it; the tiny race until the server binds is accepted). */
export function freePort(): Promise<number>;
/** Resolves to true when this process cannot listen on host:port (something else does). */
export function portTaken(port: number, host?: string): Promise<boolean>;
