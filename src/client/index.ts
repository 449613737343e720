/**
 * The package's main entry (`import { Client } from 'qkv'`): the client library over the
 * gateway, with its Session, Mutex and Election recipes and its errors.
 */
export * from './client.js';
export * from './concurrency.js';
export * from './errors.js';
