import { DataSource } from 'typeorm';
import { loadConfig } from '../config/app-config.js';
import { readEnvironment } from '../config/env-file.js';
import { dataSourceOptions } from './data-source.js';

/** For the TypeORM CLI (`npm run migration:generate`): the same definition the service uses. */
export default new DataSource(dataSourceOptions(loadConfig(readEnvironment())));
