import { InitialSchema1795746160671 } from './1795746160671-InitialSchema.js';

/** Every migration, oldest first. A new migration is added here as well as in its own file. */
export const MIGRATIONS = [InitialSchema1795746160671];
