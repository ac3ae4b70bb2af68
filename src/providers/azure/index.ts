export { AzureProvider, type AzureProviderOptions, deploymentFor } from './azure-provider.ts';
