// electron-builder configuration for the desktop app. `npm run package`
// (scripts/app/package.mjs) passes it to electron-builder's API; the CLI
// takes it too: npx electron-builder --config build/electron-builder.config.cjs
//
// Layout of a packaged app (resources/ is process.resourcesPath):
//   resources/app.asar                    package.json, dist/electron/**, dist/renderer/**, runtime node_modules
//       (scripts/app/package.mjs adds the exclusion of build-only modules: cmake-js and co.)
//   resources/app.asar.unpacked/native-addon/build/Release/peft_studio.node
//       a native addon cannot be dlopen()ed from inside an archive
//       (electron/engine/load.ts looks here when it runs from app.asar)
//   resources/demo/                       the bundled demo model and datasets
//       plain files (extraResources), because the engine mmaps the weights and
//       C++ cannot read inside app.asar (electron/demo/paths.ts looks here)
/** @type {import('electron-builder').Configuration} */
module.exports = {
  appId: 'io.github.peftstudio.app',
  productName: 'PEFT Studio',
  executableName: 'peft-studio',
  copyright: 'Copyright © 2026 the PEFT Studio contributors (Apache-2.0)',
  directories: { output: 'release', buildResources: 'build' },
  files: [
    'package.json',
    'dist/electron/**/*.{js,cjs}',
    '!dist/electron/**/*.test.js',
    '!dist/electron/**/testing/**', // test fixtures and helpers
    '!dist/electron/export/test-reference.js',
    'dist/renderer/**/*',
    'native-addon/build/Release/peft_studio.node',
  ],
  asarUnpack: ['native-addon/build/Release/*.node'],
  extraResources: [{ from: 'resources/demo', to: 'demo', filter: ['**/*'] }],
  // The addon is built once with cmake-js for Node-API 8, which Electron
  // loads as it is: no rebuild against Electron's headers is needed.
  npmRebuild: false,
  nodeGypRebuild: false,
  buildDependenciesFromSource: false,
  linux: {
    target: ['AppImage', 'deb'],
    icon: 'build/icons',
    category: 'Development',
    synopsis: 'Fine-tune open LLMs with LoRA on your own machine',
    maintainer: 'PEFT Studio contributors <peft-studio@users.noreply.github.com>',
  },
  deb: { packageCategory: 'devel' },
  appImage: { artifactName: '${productName}-${version}-${arch}.${ext}' },
  win: { target: ['nsis'], icon: 'build/icon.png' },
  nsis: { oneClick: false, perMachine: false, allowToChangeInstallationDirectory: true },
  mac: { target: ['dmg'], icon: 'build/icon.png', category: 'public.app-category.developer-tools' },
};
