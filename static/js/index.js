import './credential.js'; // moves a ?token= out of the address
import {adminLink} from './nav.js';

adminLink();
