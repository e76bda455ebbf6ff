import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { renderHomePage } from './home-page.js';

@Injectable()
export class HomeService {
  private readonly html: string;

  constructor(config: AppConfig) {
    this.html = renderHomePage(config);
  }

  page(): string {
    return this.html;
  }
}
