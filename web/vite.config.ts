// Vite config for the Shoal console. `npm run dev` serves the console with hot reload and
// proxies the API to a running server (SHOAL_API, default http://127.0.0.1:8680).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const api = process.env.SHOAL_API ?? 'http://127.0.0.1:8680';

export default defineConfig({
  base: '/',
  plugins: [react()],
  server: {
    port: Number(process.env.PORT ?? 5173),
    proxy: {
      '/api': { target: api, changeOrigin: true },
      '/healthz': { target: api, changeOrigin: true },
      '/metrics': { target: api, changeOrigin: true },
    },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 2000,
  },
});
