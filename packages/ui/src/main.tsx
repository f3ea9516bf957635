import { render } from 'preact';
import './styles.css';
import { App } from './app.js';
import { startLive } from './live.js';

startLive();
render(<App />, document.getElementById('app')!);
