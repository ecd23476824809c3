export * from './embedded-registry';
export * from './backup/backup-archive';
export * from './backup/backup-stream';
export * from './backup/backup-api';
export * from './backup/restore';
export * from './backup/tar';
