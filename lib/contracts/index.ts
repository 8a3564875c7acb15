export * from './tracking';
export * from './lead';
export * from './siteConfig';
export * from './issues';
export * from './trackerSettings';
export * from './delivery';
export * from './deliveryKinds';
