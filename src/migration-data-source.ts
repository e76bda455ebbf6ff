import { DataSource } from 'typeorm';
import { loadConfig } from './config/app-config.js';
import { readEnvironment } from './config/env-file.js';
import { dataSourceOptions } from './database/data-source.js';
import { ENTITIES } from './entities.js';

/** For the TypeORM CLI (`npm run migration:generate`): the definition the service uses, with the entities to compare. */
export default new DataSource({ ...dataSourceOptions(loadConfig(readEnvironment())), entities: ENTITIES });
