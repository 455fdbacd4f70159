// The console's two dictionaries. Labels live in `en.ts` and `zh.ts`.

import { en, type Key } from './en';
import { zh } from './zh';

export type { Key };
export type Lang = 'en' | 'zh';

export const dictionaries: Record<Lang, Record<Key, string>> = { en, zh };
